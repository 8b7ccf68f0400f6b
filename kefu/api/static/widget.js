/* kefu embeddable chat widget: one tag on any page,
 *   <script src="https://HOST/widget.js" data-locale="zh|en" async></script>
 * Options (data- attributes): locale, title, position (right|left), user-id, api-key, color, open.
 * Plain ES2020, no dependencies, everything inside a shadow root (the page's CSS cannot reach it).
 * All server- and user-supplied text is written with textContent only. docs/widget.md has the details. */
(() => {
  'use strict';

  if (window.KefuWidget) return; // the tag was pasted twice

  const script = document.currentScript
    || Array.from(document.querySelectorAll('script[src]')).find((s) => /\/widget\.js([?#]|$)/.test(s.src));
  const opts = (script && script.dataset) || {};
  const BASE = String(opts.server || (script ? script.src : `${location.origin}/widget.js`))
    .replace(/\/widget\.js([?#].*)?$/, '').replace(/\/+$/, '');
  const MAX_LEN = 4000;
  const TURN_WATCHDOG_MS = 60000; // no frame for this long while a message is out: drop the socket, resend
  const BACKOFF_MS = { first: 500, max: 15000 };
  const VALID_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
  const PREFIX = 'kefu.widget.';

  // ---------------------------------------------------------------- strings (zh + en)
  const STRINGS = {
    zh: {
      title: '在线客服',
      open: '打开在线客服',
      minimize: '收起',
      langToggle: 'English',
      langToggleLabel: 'Switch to English',
      newConversation: '新对话',
      placeholder: '请输入您的问题…',
      inputLabel: '消息内容',
      send: '发送',
      greeting: '您好！请问有什么可以帮您？',
      connecting: '正在连接…',
      offline: '连接已断开，正在重新连接…消息会在恢复后自动发送',
      unauthorized: '需要有效的 API 密钥，请联系网站管理员',
      pending: '等待发送',
      failed: '发送失败',
      handoffWaiting: '正在为您转接人工客服，请稍候…',
      handoffTalking: (name) => (name ? `人工客服 ${name} 正在为您服务` : '人工客服正在为您服务'),
      backToBot: '人工服务已结束，智能助手继续为您服务',
      agent: '人工客服',
      sources: '参考：',
      quickReplies: '快捷回复',
      ratingPrompt: '对话已结束，请为本次服务评分',
      ratingGroup: '服务评分',
      star: (n) => `${n} 星`,
      commentPlaceholder: '补充意见（可选）',
      submitRating: '提交评价',
      chooseRating: '请先选择星级',
      thanks: '感谢您的评价！',
      ratingError: '评价提交失败，请稍后重试',
      errorGeneric: '出错了，请稍后重试',
      errorTooLong: `消息不能超过 ${MAX_LEN} 个字符`,
      rateLimited: (s) => `发送过于频繁，${s} 秒后自动重试`,
      unread: (n) => `${n} 条新消息`,
    },
    en: {
      title: 'Customer service',
      open: 'Open customer service chat',
      minimize: 'Minimize',
      langToggle: '中文',
      langToggleLabel: '切换到中文',
      newConversation: 'New chat',
      placeholder: 'Type your message…',
      inputLabel: 'Message',
      send: 'Send',
      greeting: 'Hi! How can we help you today?',
      connecting: 'Connecting…',
      offline: 'Connection lost, reconnecting… Your messages will be sent when it is back',
      unauthorized: 'A valid API key is required; please contact the site owner',
      pending: 'Waiting to send',
      failed: 'Not sent',
      handoffWaiting: 'Connecting you to a human agent, please wait…',
      handoffTalking: (name) => (name ? `You are talking to ${name}, a human agent` : 'You are talking to a human agent'),
      backToBot: 'The agent has handed you back to the assistant',
      agent: 'Agent',
      sources: 'Sources:',
      quickReplies: 'Quick replies',
      ratingPrompt: 'This conversation has ended. How did we do?',
      ratingGroup: 'Service rating',
      star: (n) => `${n} star${n === 1 ? '' : 's'}`,
      commentPlaceholder: 'Any comments? (optional)',
      submitRating: 'Submit rating',
      chooseRating: 'Please choose a rating first',
      thanks: 'Thank you for your feedback!',
      ratingError: 'Could not send your rating, please try again',
      errorGeneric: 'Something went wrong, please try again',
      errorTooLong: `Messages are limited to ${MAX_LEN} characters`,
      rateLimited: (s) => `Too many messages; retrying in ${s} s`,
      unread: (n) => `${n} new message${n === 1 ? '' : 's'}`,
    },
  };

  // ---------------------------------------------------------------- storage and ids
  const store = {
    get(key) { try { return window.localStorage.getItem(PREFIX + key); } catch { return null; } },
    set(key, value) { try { window.localStorage.setItem(PREFIX + key, value); } catch { /* private mode */ } },
  };

  function randomHex(chars) {
    const bytes = new Uint8Array(Math.ceil(chars / 2));
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('').slice(0, chars);
  }

  const newMessageId = () => `wm-${randomHex(24)}`;
  const newConversationId = () => `w-${randomHex(20)}`;

  function storedId(key, make) {
    let id = store.get(key);
    if (!id || !VALID_ID.test(id)) {
      id = make();
      store.set(key, id);
    }
    return id;
  }

  // ---------------------------------------------------------------- state
  const userId = VALID_ID.test(opts.userId || '') ? opts.userId : storedId('userId', () => `u-${randomHex(16)}`);
  const apiKey = opts.apiKey || '';
  let lang = initialLang();
  let conversationId = storedId('conversationId', newConversationId);
  let queue = loadQueue(); // messages not yet answered: [{id, text, locale, after}], sent one at a time
  let inflight = null; // queue[0] once sent on the current socket
  let streamBubble = null;
  let socket = null;
  let connection = 'idle'; // idle | connecting | online | offline
  let attempt = 0;
  let reconnectTimer = null;
  let watchdog = null;
  let retryTimer = null;
  let historyLoading = null; // pushes that arrive while the transcript loads wait here
  let userCount = 0; // user messages in the transcript, as far as this page knows
  let owner = 'bot';
  let agentName = '';
  let handoffTalking = false;
  let unread = 0;
  let isOpen = false;
  let chosenRating = 0;
  const seenPushes = new Set();

  function initialLang() {
    const wanted = (store.get('lang') || opts.locale || '').toLowerCase();
    if (wanted.startsWith('zh')) return 'zh';
    if (wanted.startsWith('en')) return 'en';
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || '';
    return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  function t(key, ...args) {
    const value = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
    return typeof value === 'function' ? value(...args) : value;
  }

  function loadQueue() {
    try {
      const saved = JSON.parse(store.get('queue') || 'null');
      if (saved && saved.conversationId === conversationId && Array.isArray(saved.items)) {
        return saved.items.filter((m) => m && VALID_ID.test(m.id) && typeof m.text === 'string');
      }
    } catch { /* a damaged entry is ignored */ }
    return [];
  }

  function saveQueue() {
    store.set('queue', JSON.stringify({ conversationId, items: queue.map(({ id, text, locale, after }) => ({ id, text, locale, after })) }));
  }

  // ---------------------------------------------------------------- DOM
  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function button(className, testid, text) {
    const node = make('button', className, text);
    node.type = 'button';
    node.dataset.testid = testid;
    return node;
  }

  function chatIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'launcher-icon');
    const path = svg.appendChild(document.createElementNS(ns, 'path'));
    path.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute('fill-rule', 'evenodd');
    return svg;
  }

  const host = document.createElement('kefu-widget');
  host.dataset.testid = 'kefu-widget';
  const root = host.attachShadow({ mode: 'open' });
  // Inline: the host is reset before the stylesheet arrives (the page's inherited fonts and colours stop
  // here), and the widget stays invisible until its stylesheet has loaded.
  const early = make('style', '', ':host{all:initial !important;display:block !important}.kefu-root{visibility:hidden}');
  const sheet = make('link');
  sheet.rel = 'stylesheet';
  sheet.href = `${BASE}/widget.css`;
  const ui = make('div', `kefu-root ${opts.position === 'left' ? 'left' : 'right'}`);
  if (/^#[0-9a-fA-F]{3,8}$/.test(opts.color || '')) ui.style.setProperty('--kefu-accent', opts.color);

  const launcher = button('launcher', 'kefu-launcher');
  launcher.appendChild(chatIcon());
  const badge = launcher.appendChild(make('span', 'badge'));
  badge.dataset.testid = 'kefu-unread';
  badge.hidden = true;

  const panel = make('section', 'panel');
  panel.dataset.testid = 'kefu-panel';
  panel.setAttribute('role', 'dialog');
  panel.hidden = true;
  const header = panel.appendChild(make('header', 'header'));
  const title = header.appendChild(make('h2', 'title'));
  const actions = header.appendChild(make('div', 'actions'));
  const langToggle = actions.appendChild(button('ghost', 'kefu-lang'));
  const newChat = actions.appendChild(button('ghost', 'kefu-new'));
  const minimize = actions.appendChild(button('ghost icon', 'kefu-minimize', '–'));

  const status = panel.appendChild(make('div', 'status'));
  status.dataset.testid = 'kefu-status';
  status.setAttribute('role', 'status');
  status.hidden = true;
  const banner = panel.appendChild(make('div', 'banner'));
  banner.dataset.testid = 'kefu-banner';
  banner.setAttribute('role', 'status');
  banner.hidden = true;

  const list = panel.appendChild(make('div', 'messages'));
  list.dataset.testid = 'kefu-messages';
  list.setAttribute('role', 'log');
  list.setAttribute('aria-live', 'polite');
  const greeting = make('div', 'greeting');

  const rating = panel.appendChild(make('div', 'rating'));
  rating.dataset.testid = 'kefu-rating';
  rating.hidden = true;
  const ratingPrompt = rating.appendChild(make('p', 'rating-prompt'));
  const stars = rating.appendChild(make('div', 'stars'));
  stars.setAttribute('role', 'radiogroup');
  for (let n = 1; n <= 5; n += 1) {
    const star = stars.appendChild(button('star', `kefu-star-${n}`, '★'));
    star.dataset.rating = String(n);
    star.setAttribute('role', 'radio');
    star.setAttribute('aria-checked', 'false');
  }
  const ratingComment = rating.appendChild(make('input', 'rating-comment'));
  ratingComment.dataset.testid = 'kefu-rating-comment';
  ratingComment.maxLength = 1000;
  const ratingSubmit = rating.appendChild(button('primary', 'kefu-rating-submit'));
  const ratingStatus = rating.appendChild(make('p', 'rating-status'));
  ratingStatus.dataset.testid = 'kefu-rating-status';
  ratingStatus.setAttribute('role', 'status');

  const composer = panel.appendChild(make('form', 'composer'));
  const input = composer.appendChild(make('textarea', 'input'));
  input.dataset.testid = 'kefu-input';
  input.rows = 1;
  input.maxLength = MAX_LEN;
  const send = composer.appendChild(button('primary', 'kefu-send'));
  send.type = 'submit';

  ui.append(panel, launcher);
  root.append(early, sheet, ui);

  function applyLang() {
    host.dataset.lang = lang;
    panel.lang = lang === 'zh' ? 'zh-CN' : 'en';
    title.textContent = opts.title || t('title');
    panel.setAttribute('aria-label', title.textContent);
    launcher.setAttribute('aria-label', t('open'));
    langToggle.textContent = t('langToggle');
    langToggle.setAttribute('aria-label', t('langToggleLabel'));
    newChat.textContent = t('newConversation');
    minimize.setAttribute('aria-label', t('minimize'));
    minimize.title = t('minimize');
    input.placeholder = t('placeholder');
    input.setAttribute('aria-label', t('inputLabel'));
    send.textContent = t('send');
    greeting.textContent = t('greeting');
    ratingPrompt.textContent = t('ratingPrompt');
    stars.setAttribute('aria-label', t('ratingGroup'));
    stars.querySelectorAll('.star').forEach((s) => s.setAttribute('aria-label', t('star', Number(s.dataset.rating))));
    ratingComment.placeholder = t('commentPlaceholder');
    ratingSubmit.textContent = t('submitRating');
    ratingNote(ratingStatus.dataset.i18n || '');
    list.querySelectorAll('[data-i18n]').forEach((node) => { node.textContent = t(node.dataset.i18n); });
    list.querySelectorAll('.sender.agent').forEach((node) => { node.textContent = agentLabel(node.dataset.name); });
    showBanner();
    showConnection();
    showUnread();
  }

  // ---------------------------------------------------------------- rendering
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const toBottom = () => { list.scrollTop = list.scrollHeight; };

  function append(row, force = false) {
    const stick = force || nearBottom();
    greeting.remove();
    list.appendChild(row);
    if (stick) toBottom();
    return row;
  }

  function agentLabel(name) {
    return name ? `${t('agent')} · ${name}` : t('agent');
  }

  /** A message bubble; role user | bot | agent | system. Returns the bubble. */
  function addMessage(role, text, { ts = '', name = '', force = false } = {}) {
    const safe = ['user', 'agent', 'system'].includes(role) ? role : 'bot';
    const row = make('div', `row ${safe}`);
    if (safe === 'agent') {
      const sender = row.appendChild(make('div', 'sender agent', agentLabel(name)));
      if (name) sender.dataset.name = name;
    }
    const bubble = row.appendChild(make('div', `msg ${safe}`, text));
    bubble.dataset.role = safe;
    const when = Date.parse(ts);
    if (Number.isFinite(when)) bubble.title = new Date(when).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
    append(row, force || safe === 'user');
    return bubble;
  }

  function addNote(key) {
    const row = make('div', 'row system');
    const note = row.appendChild(make('div', 'msg system', t(key)));
    note.dataset.i18n = key;
    note.dataset.role = 'system';
    return append(row, true);
  }

  function addError(text) {
    const row = make('div', 'row error');
    const bubble = row.appendChild(make('div', 'msg error', text));
    bubble.setAttribute('role', 'alert');
    return append(row, true);
  }

  function markUser(bubble, state) {
    const row = bubble.parentElement;
    bubble.dataset.state = state;
    row.querySelectorAll('.msg-state').forEach((n) => n.remove());
    if (state === 'pending' || state === 'failed') {
      const label = row.appendChild(make('div', 'msg-state', t(state)));
      label.dataset.i18n = state;
    }
  }

  function renderExtras(bubble, reply) {
    const row = bubble.parentElement;
    const citations = (Array.isArray(reply.citations) ? reply.citations : []).filter((c) => c && (c.title || c.id));
    if (citations.length) {
      const box = row.appendChild(make('div', 'citations'));
      const label = box.appendChild(make('span', 'citations-label', t('sources')));
      label.dataset.i18n = 'sources';
      citations.forEach((c) => {
        const href = [c.url, c.id].find((v) => typeof v === 'string' && /^https?:\/\//i.test(v));
        const chip = box.appendChild(make(href ? 'a' : 'span', 'citation', c.title || c.id));
        chip.dataset.testid = 'kefu-citation';
        if (href) { chip.href = href; chip.target = '_blank'; chip.rel = 'noopener noreferrer'; }
        if (c.id) chip.title = String(c.id);
      });
    }
    const quick = (Array.isArray(reply.quick_replies) ? reply.quick_replies : []).filter((q) => typeof q === 'string' && q.trim());
    if (quick.length) {
      const box = row.appendChild(make('div', 'quick-replies'));
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', t('quickReplies'));
      quick.forEach((q) => box.appendChild(button('quick-reply', 'kefu-quick-reply', q)).addEventListener('click', () => submit(q)));
    }
  }

  function renderTurn(turn) {
    const reply = (turn && turn.reply) || {};
    const text = typeof reply.text === 'string' ? reply.text : '';
    const extras = (reply.citations && reply.citations.length) || (reply.quick_replies && reply.quick_replies.length);
    let bubble = streamBubble;
    streamBubble = null;
    if (!text && !extras) { // the bot stays silent while an agent owns the conversation
      if (bubble) bubble.parentElement.remove();
      return;
    }
    if (bubble) {
      bubble.classList.remove('streaming');
      bubble.textContent = text;
    } else {
      bubble = addMessage('bot', text);
      bubble.dataset.deltas = '0';
    }
    if (turn.intent && turn.intent.name) bubble.dataset.intent = String(turn.intent.name);
    renderExtras(bubble, reply);
    countUnread();
    if (nearBottom()) toBottom();
  }

  function showDelta(text) {
    if (!streamBubble) {
      streamBubble = addMessage('bot', '');
      streamBubble.classList.add('streaming');
      streamBubble.dataset.deltas = '0';
    }
    const stick = nearBottom();
    streamBubble.appendChild(document.createTextNode(text));
    streamBubble.dataset.deltas = String(Number(streamBubble.dataset.deltas) + 1);
    if (stick) toBottom();
  }

  // ---------------------------------------------------------------- owner, banner, rating
  function showBanner() {
    host.dataset.owner = owner;
    banner.hidden = owner !== 'agent';
    banner.textContent = handoffTalking ? t('handoffTalking', agentName) : t('handoffWaiting');
    banner.dataset.state = handoffTalking ? 'talking' : 'waiting';
  }

  function setOwner(next, { name = '', quiet = false } = {}) {
    if (!['bot', 'agent', 'closed'].includes(next)) return;
    if (name) { agentName = name; handoffTalking = true; }
    const previous = owner;
    owner = next;
    if (owner !== 'agent') { handoffTalking = false; agentName = ''; }
    if (previous === 'agent' && owner === 'bot' && !quiet) addNote('backToBot');
    showBanner();
    if (owner === 'closed') showRating();
    else rating.hidden = true; // the customer wrote again: the conversation is open, nothing to rate now
  }

  function showRating() {
    if (store.get('rated') === conversationId) return; // rated once per conversation
    rating.classList.remove('done');
    chosenRating = 0;
    paintStars();
    ratingNote('');
    const stick = nearBottom();
    rating.hidden = false;
    if (stick) toBottom(); // the prompt takes room from the messages: keep the last one in view
  }

  function paintStars() {
    stars.querySelectorAll('.star').forEach((s) => {
      const on = Number(s.dataset.rating) <= chosenRating;
      s.classList.toggle('on', on);
      s.setAttribute('aria-checked', String(Number(s.dataset.rating) === chosenRating));
    });
  }

  function ratingNote(key) {
    ratingStatus.dataset.i18n = key;
    ratingStatus.textContent = key ? t(key) : '';
  }

  async function submitRating() {
    if (!chosenRating) { ratingNote('chooseRating'); return; }
    const body = { rating: chosenRating };
    const comment = ratingComment.value.trim();
    if (comment) body.comment = comment;
    const rated = conversationId;
    ratingSubmit.disabled = true;
    try {
      const res = await api(`/v1/conversations/${encodeURIComponent(rated)}/feedback`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(String(res.status));
      store.set('rated', rated);
      rating.classList.add('done');
      ratingNote('thanks');
    } catch {
      ratingNote('ratingError');
    } finally {
      ratingSubmit.disabled = false;
    }
  }

  // ---------------------------------------------------------------- unread badge and connection status
  function countUnread() {
    if (isOpen) return;
    unread += 1;
    showUnread();
  }

  function showUnread() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? '99+' : String(unread);
    badge.setAttribute('aria-label', t('unread', unread));
  }

  function showConnection() {
    host.dataset.connection = connection;
    status.hidden = connection === 'online' || connection === 'idle';
    status.textContent = connection === 'unauthorized' ? t('unauthorized') : t(connection === 'connecting' ? 'connecting' : 'offline');
    status.dataset.state = connection;
  }

  // ---------------------------------------------------------------- HTTP
  function api(path, init = {}) {
    const headers = { Accept: 'application/json', ...(init.headers || {}) };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    return fetch(`${BASE}${path}`, { ...init, headers, credentials: 'omit' });
  }

  /** The transcript from the server, then the messages still waiting; a message the server already
   * answered (its turn was stored before the socket dropped) leaves the queue instead of being sent again. */
  async function loadHistory() {
    const id = conversationId;
    const buffered = [];
    historyLoading = buffered;
    let data = null;
    try {
      const res = await api(`/v1/conversations/${encodeURIComponent(id)}`);
      if (res.ok) data = await res.json();
      else if (res.status !== 404) throw new Error(String(res.status));
    } finally {
      if (historyLoading === buffered) historyLoading = null;
    }
    if (id !== conversationId) return;
    list.replaceChildren();
    streamBubble = null;
    const messages = data && Array.isArray(data.messages) ? data.messages : [];
    const users = messages.filter((m) => m && m.role === 'user').map((m) => m.text);
    messages.forEach((m) => {
      if (m && typeof m.text === 'string' && m.text) addMessage(m.role, m.text, { ts: m.ts });
    });
    queue = queue.filter((m) => !(Number.isInteger(m.after) && users[m.after] === m.text));
    saveQueue();
    userCount = users.length;
    queue.forEach((m) => { m.bubble = addMessage('user', m.text); markUser(m.bubble, 'pending'); });
    if (!list.childElementCount) list.appendChild(greeting);
    toBottom();
    const lastSpeaker = messages.filter((m) => m && m.role !== 'user').pop();
    handoffTalking = Boolean(data && data.owner === 'agent' && lastSpeaker && lastSpeaker.role === 'agent');
    if (data) setOwner(data.owner, { quiet: true });
    buffered.forEach((push) => {
      const shown = messages.some((m) => m.role === push.role && m.text === push.text && Date.parse(m.ts) >= Date.parse(push.ts) - 5000);
      if (!shown) onPush(push);
    });
  }

  // ---------------------------------------------------------------- the socket
  function socketUrl() {
    const url = `${BASE.replace(/^http/i, 'ws')}/v1/ws/${encodeURIComponent(conversationId)}`;
    return apiKey ? `${url}?api_key=${encodeURIComponent(apiKey)}` : url;
  }

  function connect() {
    if (socket || !conversationId) return;
    window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    connection = attempt === 0 ? 'connecting' : 'offline';
    showConnection();
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = async () => {
      if (socket !== ws) return;
      attempt = 0;
      connection = 'online';
      showConnection();
      try {
        await loadHistory();
      } catch {
        /* the transcript could not be read now: the conversation still works, the next reconnect tries again */
      }
      if (socket === ws) flush();
    };
    ws.onmessage = (event) => {
      if (socket !== ws) return;
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame && typeof frame === 'object') onFrame(frame);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      dropInflight();
      if (event.code === 4401 || event.code === 4403) connection = 'unauthorized';
      else if (event.code === 4400 && !queue.length) { startConversation(); return; }
      else connection = 'offline';
      showConnection();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    const delay = Math.min(BACKOFF_MS.max, BACKOFF_MS.first * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt += 1;
    reconnectTimer = window.setTimeout(() => { reconnectTimer = null; connect(); }, delay);
  }

  /** Drop the socket and open a new one now (what a lost connection does, without waiting). */
  function reconnect() {
    const ws = socket;
    socket = null;
    dropInflight();
    if (ws) { try { ws.close(); } catch { /* already closing */ } }
    attempt = 0;
    connect();
  }

  function dropInflight() {
    window.clearTimeout(watchdog);
    window.clearTimeout(retryTimer);
    if (streamBubble) { streamBubble.parentElement.remove(); streamBubble = null; }
    if (inflight && inflight.bubble) markUser(inflight.bubble, 'pending');
    inflight = null;
  }

  function armWatchdog() {
    window.clearTimeout(watchdog);
    watchdog = window.setTimeout(() => { if (inflight) reconnect(); }, TURN_WATCHDOG_MS);
  }

  /** Send the oldest waiting message, if the socket is open and nothing is out. */
  function flush() {
    if (!socket || socket.readyState !== WebSocket.OPEN || inflight || !queue.length) return;
    inflight = queue[0];
    socket.send(JSON.stringify({
      text: inflight.text,
      message_id: inflight.id,
      locale: inflight.locale,
      user_id: userId,
      channel: 'web',
      stream: true,
    }));
    if (inflight.bubble) markUser(inflight.bubble, 'sent');
    armWatchdog();
  }

  function finishInflight() {
    window.clearTimeout(watchdog);
    queue.shift();
    saveQueue();
    inflight = null;
    flush();
  }

  function onFrame(frame) {
    if (typeof frame.event === 'string') {
      if (historyLoading) historyLoading.push(frame);
      else onPush(frame);
      return;
    }
    if (!inflight) return; // a late frame of a message given up on; it is sent again and answered then
    armWatchdog();
    if (typeof frame.delta === 'string') {
      showDelta(frame.delta);
    } else if (frame.error && typeof frame.error === 'object') {
      onTurnError(frame.error);
    } else if (frame.message_id === inflight.id && frame.reply) {
      if (inflight.bubble) markUser(inflight.bubble, 'sent');
      userCount += 1;
      renderTurn(frame);
      setOwner(frame.owner);
      finishInflight();
    }
  }

  function onTurnError(error) {
    const item = inflight;
    if (streamBubble) { streamBubble.parentElement.remove(); streamBubble = null; }
    if (error.code === 'rate_limited') { // the same message again when the limit allows
      const seconds = Math.max(1, Number(error.retry_after) || 1);
      addError(t('rateLimited', seconds));
      window.clearTimeout(watchdog);
      retryTimer = window.setTimeout(() => { if (inflight === item) { inflight = null; flush(); } }, seconds * 1000);
      return;
    }
    // Refused for what it is (too long, conflicting id...): sending it again cannot help.
    if (item.bubble) markUser(item.bubble, 'failed');
    addError(error.code === 'text_too_long' ? t('errorTooLong') : (error.message || t('errorGeneric')));
    finishInflight();
  }

  function onPush(frame) {
    if (frame.event === 'owner') {
      setOwner(frame.owner, { name: nameOf(frame) });
      return;
    }
    if (frame.event !== 'message' || typeof frame.text !== 'string') return;
    if (frame.message_id) {
      if (seenPushes.has(frame.message_id)) return;
      seenPushes.add(frame.message_id);
    }
    const role = frame.role === 'agent' || frame.role === 'system' ? frame.role : 'bot';
    const name = role === 'agent' ? nameOf(frame) : '';
    if (role === 'agent') { handoffTalking = true; if (name) agentName = name; }
    if (frame.text) {
      const bubble = addMessage(role, frame.text, { ts: frame.ts, name: name || (role === 'agent' ? agentName : '') });
      if (frame.message_id) bubble.dataset.messageId = String(frame.message_id);
      countUnread();
    }
    if (frame.owner) setOwner(frame.owner, { name });
    else showBanner();
  }

  function nameOf(frame) {
    const name = [frame.agent_name, frame.display_name, frame.agent].find((v) => typeof v === 'string' && v.trim());
    return name ? name.trim().slice(0, 64) : '';
  }

  // ---------------------------------------------------------------- sending
  function submit(raw) {
    const text = String(raw ?? '').trim();
    if (!text) return;
    if (text.length > MAX_LEN) { addError(t('errorTooLong')); return; }
    list.querySelectorAll('.quick-replies').forEach((n) => n.remove());
    const item = { id: newMessageId(), text, locale: lang, after: userCount + queue.length };
    queue.push(item);
    saveQueue();
    store.set('active', conversationId);
    item.bubble = addMessage('user', text, { force: true });
    markUser(item.bubble, 'pending');
    if (input.value.trim() === text) { input.value = ''; autoGrow(); }
    if (!socket) connect();
    flush();
  }

  function autoGrow() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  }

  function startConversation() {
    if (queue.length) return; // never leave a customer's unsent message behind
    conversationId = newConversationId();
    store.set('conversationId', conversationId);
    saveQueue();
    userCount = 0;
    rating.classList.remove('done');
    rating.hidden = true;
    ratingComment.value = '';
    setOwner('bot', { quiet: true });
    list.replaceChildren(greeting);
    reconnect();
  }

  // ---------------------------------------------------------------- open / close
  function open() {
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    host.dataset.open = 'true';
    store.set('open', '1');
    unread = 0;
    showUnread();
    if (!socket && !reconnectTimer) connect();
    toBottom();
    input.focus({ preventScroll: true });
  }

  function close() {
    isOpen = false;
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    host.dataset.open = 'false';
    store.set('open', '0');
  }

  function setLocale(next) {
    if (next !== 'zh' && next !== 'en') return;
    lang = next;
    store.set('lang', lang);
    applyLang();
  }

  launcher.addEventListener('click', () => (isOpen ? close() : open()));
  minimize.addEventListener('click', close);
  langToggle.addEventListener('click', () => setLocale(lang === 'zh' ? 'en' : 'zh'));
  newChat.addEventListener('click', startConversation);
  composer.addEventListener('submit', (e) => { e.preventDefault(); submit(input.value); });
  input.addEventListener('input', autoGrow);
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.isComposing || e.keyCode === 229) return; // IME
    e.preventDefault();
    submit(input.value);
  });
  stars.addEventListener('click', (e) => {
    const star = e.target.closest('.star');
    if (!star) return;
    chosenRating = Number(star.dataset.rating);
    ratingNote('');
    paintStars();
  });
  ratingSubmit.addEventListener('click', submitRating);
  window.addEventListener('online', () => { if (!socket) reconnect(); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && !socket && reconnectTimer) reconnect(); });

  // ---------------------------------------------------------------- start
  function start() {
    document.body.appendChild(host);
    applyLang();
    list.appendChild(greeting);
    showBanner();
    // A returning customer (a stored conversation, or the panel left open) reconnects at once, so an
    // agent's message reaches them; a first visit opens the socket only when the panel opens.
    if (opts.open === 'true' || store.get('open') === '1') open();
    else if (queue.length || store.get('active') === conversationId) connect();
  }

  window.KefuWidget = {
    open,
    close,
    toggle: () => (isOpen ? close() : open()),
    setLocale,
    send: submit,
    reconnect,
    newConversation: startConversation,
    get conversationId() { return conversationId; },
    get owner() { return owner; },
  };

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true });
})();
