/* kefu web chat — plain ES2020, no dependencies.
 * All server- and user-supplied text is written with textContent only. */
(() => {
  'use strict';

  const MAX_LEN = 4000;
  const POLL_MS = 4000;
  const K = {
    conversationId: 'kefu.conversationId',
    userId: 'kefu.userId',
    lang: 'kefu.lang',
    apiKey: 'kefu.apiKey',
    rated: 'kefu.ratedConversation',
  };

  // ---------------------------------------------------------------- i18n
  const STRINGS = {
    zh: {
      title: 'kefu 客服',
      subtitle: '在线客服 · 7×24 小时为您服务',
      langToggle: 'English',
      langToggleLabel: 'Switch to English',
      newConversation: '新对话',
      placeholder: '请输入您的问题…（Enter 发送，Shift+Enter 换行）',
      inputLabel: '消息内容',
      send: '发送',
      emptyHint: '您好！我是 kefu 智能客服，请问有什么可以帮您？',
      handoff: '已为您转接人工客服',
      agent: '人工客服',
      sources: '来源：',
      quickReplies: '快捷回复',
      ratingPrompt: '对话已结束，请为本次服务评分：',
      ratingGroup: '服务评分',
      star: (n) => `${n} 星`,
      commentPlaceholder: '补充意见（可选）',
      thanks: '感谢您的评价！',
      feedbackError: '评价提交失败，请稍后重试。',
      retry: '重试',
      notSent: '未发送',
      errorGeneric: '出错了，请稍后重试。',
      errorNetwork: '网络连接失败，请检查网络后重试。',
      errorInterrupted: '回复中断，请重试。',
      errorTooLong: `消息不能超过 ${MAX_LEN} 个字符。`,
      errorHistory: '无法加载历史对话。',
      authPrompt: '此服务需要 API 密钥：',
      authPlaceholder: '输入 API 密钥',
      authSave: '保存',
      authRequired: '需要有效的 API 密钥，请在上方输入。',
    },
    en: {
      title: 'kefu 客服',
      subtitle: 'Customer service · here 24/7',
      langToggle: '中文',
      langToggleLabel: '切换到中文',
      newConversation: 'New conversation',
      placeholder: 'Type your message… (Enter to send, Shift+Enter for a new line)',
      inputLabel: 'Message',
      send: 'Send',
      emptyHint: "Hi! I'm the kefu assistant. How can I help you today?",
      handoff: 'You are now talking to a human agent',
      agent: 'Agent',
      sources: 'Sources:',
      quickReplies: 'Quick replies',
      ratingPrompt: 'This conversation has ended. How would you rate our service?',
      ratingGroup: 'Service rating',
      star: (n) => `${n} star${n === 1 ? '' : 's'}`,
      commentPlaceholder: 'Additional comments (optional)',
      thanks: 'Thank you for your feedback!',
      feedbackError: 'Could not send your rating. Please try again.',
      retry: 'Retry',
      notSent: 'Not sent',
      errorGeneric: 'Something went wrong. Please try again.',
      errorNetwork: 'Network error. Please check your connection and try again.',
      errorInterrupted: 'The reply was interrupted. Please try again.',
      errorTooLong: `Messages are limited to ${MAX_LEN} characters.`,
      errorHistory: 'Could not load the conversation history.',
      authPrompt: 'This service requires an API key:',
      authPlaceholder: 'Enter API key',
      authSave: 'Save',
      authRequired: 'A valid API key is required. Please enter it above.',
    },
  };

  // ------------------------------------------------------------- storage
  const store = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch { return null; }
    },
    set(key, value) {
      try { window.localStorage.setItem(key, value); } catch { /* private mode */ }
    },
    remove(key) {
      try { window.localStorage.removeItem(key); } catch { /* ignore */ }
    },
  };

  // ------------------------------------------------------------- ids
  const cryptoObj = window.crypto || null;

  function randomHex(chars) {
    const bytes = new Uint8Array(Math.ceil(chars / 2));
    if (cryptoObj && typeof cryptoObj.getRandomValues === 'function') {
      cryptoObj.getRandomValues(bytes);
    } else {
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('').slice(0, chars);
  }

  function newMessageId() {
    if (cryptoObj && typeof cryptoObj.randomUUID === 'function') {
      try { return cryptoObj.randomUUID(); } catch { /* insecure context */ }
    }
    const h = randomHex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const newConversationId = () => `web-${randomHex(16)}`;
  const VALID_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

  function getUserId() {
    let id = store.get(K.userId);
    if (!id || !VALID_ID.test(id)) {
      id = `u-${randomHex(16)}`;
      store.set(K.userId, id);
    }
    return id;
  }

  // ------------------------------------------------------------- DOM
  const $ = (id) => document.getElementById(id);
  const el = {
    messages: $('messages'),
    input: $('input'),
    send: $('send'),
    composer: $('composer'),
    counter: $('counter'),
    langToggle: $('lang-toggle'),
    newConversation: $('new-conversation'),
    banner: $('handoff-banner'),
    emptyHint: $('empty-hint'),
    rating: $('rating'),
    ratingPrompt: $('rating-prompt'),
    ratingControls: $('rating-controls'),
    ratingStars: $('rating-stars'),
    ratingComment: $('rating-comment'),
    ratingStatus: $('rating-status'),
    authBar: $('auth-bar'),
    authForm: $('auth-form'),
    apiKey: $('api-key'),
  };

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ------------------------------------------------------------- state
  let lang = initialLang();
  let conversationId = null;
  const userId = getUserId();
  let inFlight = false;
  let controller = null;
  let generation = 0; // bumped on "new conversation" to drop stale results
  let pending = null; // the unanswered user turn: {text, messageId, bubble, errorRows}
  let owner = 'bot';
  let pollTimer = null;
  let pollBusy = false;
  let onAuthSaved = null;
  const agentSeen = new Set(); // history indices of agent messages already shown

  function initialLang() {
    const saved = store.get(K.lang);
    if (saved === 'zh' || saved === 'en') return saved;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || '';
    return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  function t(key, ...args) {
    const value = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
    return typeof value === 'function' ? value(...args) : value;
  }

  function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    document.querySelectorAll('[data-i18n]').forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    document.querySelectorAll('[data-i18n-placeholder]').forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    document.querySelectorAll('[data-i18n-aria]').forEach((node) => {
      node.setAttribute('aria-label', t(node.dataset.i18nAria));
    });
    el.langToggle.textContent = t('langToggle');
    el.langToggle.lang = lang === 'zh' ? 'en' : 'zh-CN';
    el.langToggle.setAttribute('aria-label', t('langToggleLabel'));
    el.langToggle.title = t('langToggleLabel');
    el.ratingStars.setAttribute('aria-label', t('ratingGroup'));
    el.ratingStars.querySelectorAll('.star').forEach((star) => {
      star.setAttribute('aria-label', t('star', Number(star.dataset.rating)));
    });
    document.querySelectorAll('.citations-label').forEach((node) => { node.textContent = t('sources'); });
    document.querySelectorAll('.quick-replies').forEach((node) => {
      node.setAttribute('aria-label', t('quickReplies'));
    });
  }

  // ------------------------------------------------------------- rendering
  function nearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 96;
  }

  function scrollToBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function updateEmpty() {
    el.emptyHint.hidden = el.messages.childElementCount > 0;
  }

  function appendRow(row, force = false) {
    const stick = force || nearBottom();
    el.messages.appendChild(row);
    updateEmpty();
    if (stick) scrollToBottom();
    return row;
  }

  function formatTs(ts) {
    if (ts === undefined || ts === null || ts === '') return '';
    let ms;
    if (typeof ts === 'number') ms = ts < 1e12 ? ts * 1000 : ts;
    else if (/^\d+(\.\d+)?$/.test(String(ts))) ms = Number(ts) < 1e12 ? Number(ts) * 1000 : Number(ts);
    else ms = Date.parse(String(ts));
    if (!Number.isFinite(ms)) return '';
    try {
      return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
    } catch {
      return '';
    }
  }

  /** Add a chat bubble. role: user | bot | agent. Returns the bubble element. */
  function addMessage(role, text, { ts, force = false } = {}) {
    const safeRole = role === 'user' || role === 'agent' ? role : 'bot';
    const row = make('div', `row row-${safeRole}`);
    if (safeRole === 'agent') {
      const sender = make('div', 'sender', t('agent'));
      sender.dataset.i18n = 'agent';
      row.appendChild(sender);
    }
    const bubble = make('div', `msg ${safeRole}`, text ?? '');
    const when = formatTs(ts);
    if (when) bubble.title = when;
    row.appendChild(bubble);
    appendRow(row, force);
    return bubble;
  }

  /** Add an error bubble, optionally with a retry button. Returns the row. */
  function addError(message, { retry = null, code = '' } = {}) {
    const row = make('div', 'row row-error');
    const bubble = make('div', 'msg error');
    bubble.setAttribute('role', 'alert');
    if (code) bubble.dataset.code = String(code);
    bubble.appendChild(make('span', 'error-text', message));
    if (retry) {
      const btn = make('button', 'retry', t('retry'));
      btn.type = 'button';
      btn.dataset.i18n = 'retry';
      btn.addEventListener('click', () => {
        if (inFlight) return;
        btn.remove();
        retry(row);
      });
      bubble.appendChild(btn);
    }
    row.appendChild(bubble);
    appendRow(row, true);
    return row;
  }

  function addTyping() {
    const row = make('div', 'row row-typing');
    row.setAttribute('aria-hidden', 'true');
    const dots = make('div', 'typing');
    for (let i = 0; i < 3; i += 1) dots.appendChild(make('span', 'dot'));
    row.appendChild(dots);
    return appendRow(row, true);
  }

  function hideTyping(turn) {
    if (turn.typingRow) turn.typingRow.remove();
    turn.typingRow = null;
    updateEmpty();
  }

  function removeQuickReplies() {
    el.messages.querySelectorAll('.quick-replies').forEach((node) => node.remove());
  }

  function removeRetryButtons() {
    el.messages.querySelectorAll('.retry').forEach((node) => node.remove());
  }

  function renderExtras(row, reply) {
    const citations = Array.isArray(reply.citations) ? reply.citations : [];
    const usable = citations.filter((c) => c && (c.title || c.id));
    if (usable.length) {
      const box = make('div', 'citations');
      box.appendChild(make('span', 'citations-label', t('sources')));
      usable.forEach((c) => {
        const chip = make('span', 'citation', c.title || c.id);
        if (c.id) chip.dataset.id = String(c.id);
        if (c.id && c.title) chip.title = String(c.id);
        box.appendChild(chip);
      });
      row.appendChild(box);
    }
    const quick = (Array.isArray(reply.quick_replies) ? reply.quick_replies : [])
      .filter((q) => typeof q === 'string' && q.trim());
    if (quick.length) {
      const box = make('div', 'quick-replies');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', t('quickReplies'));
      quick.forEach((q) => {
        const btn = make('button', 'quick-reply', q);
        btn.type = 'button';
        btn.disabled = inFlight;
        btn.addEventListener('click', () => {
          if (!inFlight) sendMessage(q);
        });
        box.appendChild(btn);
      });
      row.appendChild(box);
    }
  }

  /** Render the bot part of a full response, reusing the streamed bubble if any. */
  function renderReply(data, streamBubble) {
    const reply = (data && data.reply) || {};
    const text = typeof reply.text === 'string' ? reply.text : '';
    const hasExtras = (Array.isArray(reply.citations) && reply.citations.length)
      || (Array.isArray(reply.quick_replies) && reply.quick_replies.length);
    const stick = nearBottom();
    let bubble = streamBubble;
    if (!text && !hasExtras) {
      if (bubble) bubble.parentElement.remove();
      updateEmpty();
      return;
    }
    if (bubble) {
      bubble.classList.remove('streaming');
      if (text) bubble.textContent = text;
    } else {
      bubble = addMessage('bot', text);
    }
    if (!bubble.textContent) bubble.classList.add('empty');
    if (data.intent && data.intent.name) bubble.dataset.intent = String(data.intent.name);
    renderExtras(bubble.parentElement, reply);
    if (stick) scrollToBottom();
  }

  // ------------------------------------------------------------- owner / banner / rating
  function setOwner(newOwner, handoff = false) {
    if (newOwner === 'bot' || newOwner === 'agent' || newOwner === 'closed') owner = newOwner;
    document.body.dataset.owner = owner;
    el.banner.hidden = !(owner === 'agent' || (handoff && owner !== 'closed'));
    if (owner === 'closed') showRating();
    else hideRating();
    if (owner === 'agent') startPolling();
    else stopPolling();
  }

  function resetRating() {
    el.rating.hidden = true;
    el.rating.classList.remove('done');
    el.ratingPrompt.dataset.i18n = 'ratingPrompt';
    el.ratingPrompt.textContent = t('ratingPrompt');
    el.ratingControls.hidden = false;
    el.ratingComment.value = '';
    el.ratingStatus.textContent = '';
    setRatingBusy(false);
  }

  function showRating() {
    if (el.rating.classList.contains('done')) {
      el.rating.hidden = false;
      return;
    }
    if (store.get(K.rated) === conversationId) {
      el.rating.hidden = true;
      return;
    }
    el.rating.hidden = false;
    const stick = nearBottom();
    if (stick) scrollToBottom();
  }

  function hideRating() {
    if (!el.rating.classList.contains('done')) el.rating.hidden = true;
  }

  function setRatingBusy(busy) {
    el.ratingStars.querySelectorAll('.star').forEach((s) => { s.disabled = busy; });
    el.rating.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  async function submitRating(rating) {
    const convAtStart = conversationId;
    const body = { rating };
    const comment = el.ratingComment.value.trim();
    if (comment) body.comment = comment;
    el.ratingStatus.textContent = '';
    setRatingBusy(true);
    try {
      const res = await apiFetch(`/v1/conversations/${encodeURIComponent(convAtStart)}/feedback`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
      });
      if (convAtStart !== conversationId) return;
      if (res.status === 401) {
        requireAuth(() => submitRating(rating));
        el.ratingStatus.textContent = t('authRequired');
        return;
      }
      if (!res.ok) {
        const err = await readError(res);
        el.ratingStatus.textContent = err.message || t('feedbackError');
        return;
      }
      store.set(K.rated, convAtStart);
      el.rating.classList.add('done');
      el.ratingControls.hidden = true;
      el.ratingPrompt.dataset.i18n = 'thanks';
      el.ratingPrompt.textContent = t('thanks');
    } catch {
      if (convAtStart === conversationId) el.ratingStatus.textContent = t('feedbackError');
    } finally {
      setRatingBusy(false);
    }
  }

  // ------------------------------------------------------------- auth
  function requireAuth(action) {
    onAuthSaved = action;
    el.authBar.hidden = false;
    el.apiKey.value = '';
    el.apiKey.focus();
  }

  function saveApiKey() {
    const key = el.apiKey.value.trim();
    if (!key) {
      el.apiKey.focus();
      return;
    }
    store.set(K.apiKey, key);
    el.apiKey.value = '';
    el.authBar.hidden = true;
    const action = onAuthSaved;
    onAuthSaved = null;
    if (action) action();
    else el.input.focus();
  }

  // ------------------------------------------------------------- HTTP
  class ChatError extends Error {
    constructor(kind, message = '', { code = '', status = 0, retryable = false } = {}) {
      super(message);
      this.kind = kind; // network | stream | http | auth
      this.code = code;
      this.status = status;
      this.retryable = retryable;
    }
  }

  function apiFetch(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    const key = store.get(K.apiKey);
    if (key) headers.Authorization = `Bearer ${key}`;
    return fetch(path, { credentials: 'same-origin', ...options, headers });
  }

  async function netFetch(path, options) {
    try {
      return await apiFetch(path, options);
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ChatError('network', '', { retryable: true });
    }
  }

  async function readError(res) {
    let code = `http_${res.status}`;
    let message = '';
    try {
      const body = await res.json();
      if (body && body.error && typeof body.error === 'object') {
        code = body.error.code || code;
        message = typeof body.error.message === 'string' ? body.error.message : '';
      } else if (body && typeof body.detail === 'string') {
        message = body.detail;
      }
    } catch { /* not JSON */ }
    const status = res.status;
    if (status === 401) return new ChatError('auth', message, { code, status, retryable: true });
    const retryable = status >= 500 || status === 408 || status === 429;
    return new ChatError('http', message, { code, status, retryable });
  }

  async function readJson(res) {
    try {
      return await res.json();
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ChatError('stream', '', { retryable: true });
    }
  }

  /** Minimal Server-Sent Events parser (handles \n, \r\n, \r and split chunks). */
  function createSSEParser(onEvent) {
    let buffer = '';
    let eventName = '';
    let data = [];

    function dispatch() {
      if (data.length) onEvent(eventName || 'message', data.join('\n'));
      eventName = '';
      data = [];
    }

    function line(text) {
      if (text === '') { dispatch(); return; }
      if (text.startsWith(':')) return;
      const idx = text.indexOf(':');
      const field = idx === -1 ? text : text.slice(0, idx);
      let value = idx === -1 ? '' : text.slice(idx + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') eventName = value;
      else if (field === 'data') data.push(value);
    }

    return {
      feed(chunk, final = false) {
        buffer += chunk;
        for (;;) {
          const idx = buffer.search(/[\r\n]/);
          if (idx === -1) break;
          if (buffer[idx] === '\r' && idx === buffer.length - 1 && !final) break; // maybe \r\n split
          const skip = buffer[idx] === '\r' && buffer[idx + 1] === '\n' ? 2 : 1;
          line(buffer.slice(0, idx));
          buffer = buffer.slice(idx + skip);
        }
        if (final) {
          if (buffer) line(buffer);
          buffer = '';
          dispatch();
        }
      },
    };
  }

  function parseJsonSafe(text) {
    try { return JSON.parse(text); } catch { return null; }
  }

  async function readStream(body, turn, signal) {
    const reader = body.getReader();
    const decoder = new TextDecoder('utf-8');
    let result = null;
    let streamError = null;
    let textNode = null;

    const parser = createSSEParser((name, raw) => {
      if (result || streamError) return;
      if (name === 'delta') {
        const payload = parseJsonSafe(raw);
        const chunk = payload && typeof payload.text === 'string' ? payload.text : '';
        if (!chunk) return;
        if (!turn.streamBubble) {
          hideTyping(turn);
          turn.streamBubble = addMessage('bot', '');
          turn.streamBubble.classList.add('streaming');
          textNode = document.createTextNode('');
          turn.streamBubble.appendChild(textNode);
        }
        const stick = nearBottom();
        textNode.appendData(chunk);
        if (stick) scrollToBottom();
      } else if (name === 'reply') {
        const payload = parseJsonSafe(raw);
        if (payload && typeof payload === 'object') result = payload;
        else streamError = new ChatError('stream', '', { retryable: true });
      } else if (name === 'error') {
        const payload = parseJsonSafe(raw);
        const e = (payload && payload.error) || {};
        streamError = new ChatError('http', typeof e.message === 'string' ? e.message : '', {
          code: e.code || 'stream_error',
          retryable: true,
        });
      }
    });

    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          parser.feed(decoder.decode(), true);
          break;
        }
        parser.feed(decoder.decode(value, { stream: true }));
        if (result || streamError) break;
      }
    } catch (err) {
      if ((err && err.name === 'AbortError') || (signal && signal.aborted)) throw err;
      throw new ChatError('stream', '', { retryable: true });
    } finally {
      if (result || streamError) reader.cancel().catch(() => {});
    }
    if (streamError) throw streamError;
    if (!result) throw new ChatError('stream', '', { retryable: true });
    return result;
  }

  async function postPlain(url, body, signal) {
    const res = await netFetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body,
      signal,
    });
    if (!res.ok) throw await readError(res);
    return readJson(res);
  }

  /** Send one user turn; resolves with the full response JSON. */
  async function runTurn(turn, signal) {
    const url = `/v1/conversations/${encodeURIComponent(turn.conversationId)}/messages`;
    const body = JSON.stringify({
      text: turn.text,
      message_id: turn.messageId,
      locale: turn.locale,
      channel: 'web',
      user_id: userId,
    });
    const canStream = typeof TextDecoder === 'function' && typeof ReadableStream === 'function';
    if (!canStream) return postPlain(url, body, signal);

    const res = await netFetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body,
      signal,
    });
    if (!res.ok) throw await readError(res);
    const type = (res.headers.get('content-type') || '').toLowerCase();
    if (!type.includes('text/event-stream')) return readJson(res);
    if (!res.body || typeof res.body.getReader !== 'function') {
      // No streaming reader: ask again as plain JSON (same message_id, answered once).
      return postPlain(url, body, signal);
    }
    return readStream(res.body, turn, signal);
  }

  // ------------------------------------------------------------- sending
  function setInFlight(flag) {
    inFlight = flag;
    el.send.disabled = flag;
    el.composer.setAttribute('aria-busy', flag ? 'true' : 'false');
    el.messages.querySelectorAll('.quick-reply').forEach((b) => { b.disabled = flag; });
  }

  function updateCounter() {
    const len = el.input.value.length;
    el.counter.textContent = `${len} / ${MAX_LEN}`;
    el.counter.classList.toggle('near', len >= MAX_LEN * 0.9 && len < MAX_LEN);
    el.counter.classList.toggle('over', len >= MAX_LEN);
    autoGrow();
  }

  function autoGrow() {
    el.input.style.height = 'auto';
    el.input.style.height = `${Math.min(el.input.scrollHeight, 200)}px`;
  }

  function errorText(err) {
    switch (err.kind) {
      case 'auth': return t('authRequired');
      case 'network': return t('errorNetwork');
      case 'stream': return t('errorInterrupted');
      default: return err.message || t('errorGeneric');
    }
  }

  function sendMessage(raw) {
    if (inFlight) return;
    const text = String(raw ?? '').trim();
    if (!text) {
      el.input.focus();
      return;
    }
    if (text.length > MAX_LEN) {
      addError(t('errorTooLong'));
      return;
    }
    let turn;
    if (pending && pending.text === text && pending.conversationId === conversationId) {
      turn = pending; // resend of an unanswered message: keep its message_id
    } else {
      turn = {
        text,
        messageId: newMessageId(),
        conversationId,
        locale: lang,
        bubble: null,
        errorRows: [],
      };
    }
    sendTurn(turn);
  }

  async function sendTurn(turn) {
    if (inFlight) return;
    const gen = generation;
    pending = turn;
    removeRetryButtons();
    removeQuickReplies();
    turn.errorRows.forEach((row) => row.remove());
    turn.errorRows = [];
    turn.streamBubble = null;
    turn.locale = lang;

    if (turn.bubble && turn.bubble.isConnected) {
      turn.bubble.classList.remove('failed');
      turn.bubble.removeAttribute('data-status');
      const row = turn.bubble.parentElement;
      row.querySelectorAll('.msg-status').forEach((n) => n.remove());
      scrollToBottom();
    } else {
      turn.bubble = addMessage('user', turn.text, { force: true });
    }
    if (el.input.value.trim() === turn.text) {
      el.input.value = '';
      updateCounter();
    }

    setInFlight(true);
    turn.typingRow = addTyping();
    controller = typeof AbortController === 'function' ? new AbortController() : null;
    try {
      const data = await runTurn(turn, controller ? controller.signal : undefined);
      if (gen !== generation) return;
      pending = null;
      hideTyping(turn);
      renderReply(data, turn.streamBubble);
      setOwner(data.owner, Boolean(data.handoff));
    } catch (err) {
      if (gen !== generation || (err && err.name === 'AbortError')) return;
      const e = err instanceof ChatError ? err : new ChatError('http', '', { retryable: true });
      failTurn(turn, e);
    } finally {
      if (gen === generation) {
        controller = null;
        setInFlight(false);
      }
    }
  }

  function failTurn(turn, err) {
    hideTyping(turn);
    if (turn.streamBubble && turn.streamBubble.isConnected) turn.streamBubble.parentElement.remove();
    turn.streamBubble = null;
    if (turn.bubble && turn.bubble.isConnected) {
      turn.bubble.classList.add('failed');
      turn.bubble.dataset.status = 'failed';
      const row = turn.bubble.parentElement;
      if (!row.querySelector('.msg-status')) {
        const status = make('div', 'msg-status', t('notSent'));
        status.dataset.i18n = 'notSent';
        row.appendChild(status);
      }
    }
    // Keep the user's text so nothing is lost.
    if (!el.input.value.trim()) {
      el.input.value = turn.text;
      updateCounter();
    }
    const retry = err.retryable ? () => sendTurn(turn) : null;
    const row = addError(errorText(err), { retry, code: err.code });
    turn.errorRows.push(row);
    if (err.kind === 'auth') requireAuth(() => { if (pending === turn) sendTurn(turn); });
  }

  // ------------------------------------------------------------- history & polling
  function convUrl(id) {
    return `/v1/conversations/${encodeURIComponent(id)}`;
  }

  async function loadHistory() {
    const gen = generation;
    const id = conversationId;
    let res;
    try {
      res = await apiFetch(convUrl(id), { headers: { Accept: 'application/json' } });
    } catch {
      if (gen === generation) addError(t('errorHistory'), { retry: (row) => { row.remove(); loadHistory(); } });
      return;
    }
    if (gen !== generation) return;
    if (res.status === 404) return; // new conversation the server has not seen yet
    if (res.status === 401) {
      addError(t('authRequired'), { code: 'unauthorized' });
      requireAuth(() => {
        el.messages.querySelectorAll('.row-error').forEach((n) => n.remove());
        updateEmpty();
        loadHistory();
      });
      return;
    }
    if (!res.ok) {
      const err = await readError(res);
      if (gen === generation) {
        addError(err.message || t('errorHistory'), { retry: (row) => { row.remove(); loadHistory(); }, code: err.code });
      }
      return;
    }
    let data;
    try { data = await res.json(); } catch { data = null; }
    if (gen !== generation || !data) return;
    el.messages.replaceChildren();
    agentSeen.clear();
    const list = Array.isArray(data.messages) ? data.messages : [];
    list.forEach((m, i) => {
      if (!m || typeof m.text !== 'string') return;
      if (m.role === 'agent') agentSeen.add(i);
      if (!m.text) return;
      addMessage(m.role, m.text, { ts: m.ts });
    });
    updateEmpty();
    scrollToBottom();
    setOwner(data.owner, false);
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  async function poll() {
    if (pollBusy || inFlight || document.hidden) return;
    pollBusy = true;
    const gen = generation;
    try {
      const res = await apiFetch(convUrl(conversationId), { headers: { Accept: 'application/json' } });
      if (!res.ok || gen !== generation) return;
      const data = await res.json();
      if (gen !== generation || inFlight) return;
      const list = Array.isArray(data.messages) ? data.messages : [];
      list.forEach((m, i) => {
        if (!m || m.role !== 'agent' || agentSeen.has(i)) return;
        agentSeen.add(i);
        if (typeof m.text === 'string' && m.text) addMessage('agent', m.text, { ts: m.ts });
      });
      if (data.owner && data.owner !== owner) setOwner(data.owner, false);
    } catch {
      /* transient; try again next tick */
    } finally {
      pollBusy = false;
    }
  }

  // ------------------------------------------------------------- new conversation
  function startNewConversation() {
    generation += 1;
    if (controller) {
      try { controller.abort(); } catch { /* ignore */ }
      controller = null;
    }
    setInFlight(false);
    pending = null;
    conversationId = newConversationId();
    store.set(K.conversationId, conversationId);
    el.messages.replaceChildren();
    agentSeen.clear();
    resetRating();
    setOwner('bot', false);
    updateEmpty();
    el.input.focus();
  }

  // ------------------------------------------------------------- events
  el.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendMessage(el.input.value);
  });

  el.input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey) return;
    if (e.isComposing || e.keyCode === 229) return; // IME composition (pinyin etc.)
    e.preventDefault();
    sendMessage(el.input.value);
  });

  el.input.addEventListener('input', updateCounter);

  el.langToggle.addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    store.set(K.lang, lang);
    applyLang();
  });

  el.newConversation.addEventListener('click', startNewConversation);

  el.ratingStars.addEventListener('click', (e) => {
    const star = e.target.closest('.star');
    if (!star || star.disabled) return;
    const rating = Number(star.dataset.rating);
    if (rating >= 1 && rating <= 5) submitRating(rating);
  });

  el.authForm.addEventListener('submit', (e) => {
    e.preventDefault();
    saveApiKey();
  });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && pollTimer) poll();
  });

  // ------------------------------------------------------------- init
  function init() {
    applyLang();
    updateCounter();
    resetRating();
    const saved = store.get(K.conversationId);
    if (saved && VALID_ID.test(saved)) {
      conversationId = saved;
      loadHistory();
    } else {
      conversationId = newConversationId();
      store.set(K.conversationId, conversationId);
    }
    document.body.dataset.owner = owner;
    updateEmpty();
    el.input.focus({ preventScroll: true });
  }

  init();
})();
