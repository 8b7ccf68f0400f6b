/* kefu agent console — plain ES2020, no dependencies (docs/handoff.md).
 * Signs in with POST /auth/login (HttpOnly session cookie), talks to /agent and listens on WS /agent/ws.
 * All server- and user-supplied text is written with textContent only. */
(() => {
  'use strict';

  const HEARTBEAT_MS = 20000;
  const QUEUE_POLL_MS = 15000;
  const LANG_KEY = 'kefu.console.lang';

  // ---------------------------------------------------------------- i18n
  const STRINGS = {
    zh: {
      title: 'kefu 客服工作台', langToggle: 'English', logout: '退出登录',
      live: '实时连接', offline: '未连接', onlineAgents: (n) => `${n} 位客服在线`,
      loginTitle: '客服登录', username: '用户名', password: '密码', signIn: '登录',
      loginFailed: '用户名或密码错误', notAgent: '该账号没有客服权限',
      queue: '等待接入', queueEmpty: '暂无等待中的会话', mine: '我的会话', tickets: '待处理工单',
      claim: '接入', noConversation: '请选择或认领一个会话', returnToBot: '交还机器人', close: '结束会话',
      canned: '快捷回复…', replyPlaceholder: '输入回复…（Enter 发送，Shift+Enter 换行）', send: '发送',
      summary: '会话摘要', orders: '客户订单', notes: '内部备注', notePlaceholder: '仅客服可见的备注',
      addNote: '添加备注', botTranscript: '机器人对话记录', noOrders: '未提及订单', noNotes: '暂无备注',
      waiting: (s) => (s < 60 ? `已等待 ${Math.round(s)} 秒` : `已等待 ${Math.round(s / 60)} 分钟`),
      language: { zh: '中文', en: '英文' }, reason: '原因', intent: '诉求', orderIds: '订单',
      owner: { bot: '机器人接待中', agent: '人工接待中', closed: '已结束' },
      roles: { user: '客户', bot: '机器人', agent: '客服' },
      system: {
        toAgent: (r) => `已转人工（${r}）`, toBot: '已交还机器人', closed: (r) => `会话已结束（${r}）`,
        claimed: (a) => `${a} 已接入`,
      },
      contact: '联系方式', needContact: '待客户留下联系方式', ticket: (id) => `工单 #${id}`,
      unread: '新消息', notFound: '未找到', source: { llm: '模型摘要', extractive: '摘录摘要' },
      errors: {
        not_owner: '请先接入该会话', already_claimed: '该会话已被其他客服接入', conversation_closed: '会话已结束',
        not_waiting: '该会话不在等待队列中', empty_text: '内容不能为空', text_too_long: '内容过长',
        unknown_resolution: '请选择结案原因', conversation_not_found: '会话不存在', network: '网络错误，请重试',
        unauthorized: '登录已过期，请重新登录', generic: '操作失败，请重试',
      },
    },
    en: {
      title: 'kefu agent console', langToggle: '中文', logout: 'Sign out',
      live: 'Live', offline: 'Offline', onlineAgents: (n) => `${n} agent${n === 1 ? '' : 's'} online`,
      loginTitle: 'Agent sign-in', username: 'Username', password: 'Password', signIn: 'Sign in',
      loginFailed: 'Wrong username or password', notAgent: 'This account is not an agent',
      queue: 'Waiting', queueEmpty: 'Nobody is waiting', mine: 'My conversations', tickets: 'Open tickets',
      claim: 'Claim', noConversation: 'Pick or claim a conversation', returnToBot: 'Return to bot', close: 'Close',
      canned: 'Canned replies…', replyPlaceholder: 'Type a reply… (Enter to send, Shift+Enter for a new line)',
      send: 'Send', summary: 'Summary', orders: "Customer's orders", notes: 'Internal notes',
      notePlaceholder: 'Only agents see notes', addNote: 'Add note', botTranscript: "Bot's transcript",
      noOrders: 'No orders mentioned', noNotes: 'No notes yet',
      waiting: (s) => (s < 60 ? `waiting ${Math.round(s)} s` : `waiting ${Math.round(s / 60)} min`),
      language: { zh: 'Chinese', en: 'English' }, reason: 'Reason', intent: 'Wants', orderIds: 'Orders',
      owner: { bot: 'With the bot', agent: 'With an agent', closed: 'Closed' },
      roles: { user: 'Customer', bot: 'Bot', agent: 'Agent' },
      system: {
        toAgent: (r) => `Handed over (${r})`, toBot: 'Returned to the bot', closed: (r) => `Closed (${r})`,
        claimed: (a) => `${a} joined`,
      },
      contact: 'Contact', needContact: 'Waiting for contact details', ticket: (id) => `Ticket #${id}`,
      unread: 'new', notFound: 'not found', source: { llm: 'model summary', extractive: 'extractive summary' },
      errors: {
        not_owner: 'Claim the conversation first', already_claimed: 'Another agent has this conversation',
        conversation_closed: 'The conversation is closed', not_waiting: 'The conversation is not waiting',
        empty_text: 'Write something first', text_too_long: 'The text is too long',
        unknown_resolution: 'Pick a resolution', conversation_not_found: 'No such conversation',
        network: 'Network error, please retry', unauthorized: 'Session expired, please sign in again',
        generic: 'That did not work, please retry',
      },
    },
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    lang: localStorage.getItem(LANG_KEY) === 'en' ? 'en' : (localStorage.getItem(LANG_KEY) === 'zh' ? 'zh'
      : ((navigator.language || 'zh').toLowerCase().startsWith('zh') ? 'zh' : 'en')),
    me: null, // {id, name}
    queue: { waiting: [], claimed: [], online_agents: [] },
    fetchedAt: Date.now(),
    tickets: [],
    resolutions: [],
    current: null, // the open conversation's view
    shown: new Set(), // message ids shown in the open transcript
    unread: new Set(),
    socket: null,
    socketTries: 0,
    watched: new Set(),
    timers: [],
  };
  const t = () => STRINGS[state.lang];

  function el(tag, attrs = {}, text = null) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    if (text !== null) node.textContent = text;
    return node;
  }

  function localized(value) {
    if (value === null || value === undefined) return '';
    if (typeof value === 'object') return String(value[state.lang] || value.en || value.zh || '');
    return String(value);
  }

  function fmtTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString(state.lang === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit' });
  }

  // ---------------------------------------------------------------- HTTP
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'network', String(err));
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      if (response.status === 401 && path !== '/auth/login') showLogin();
      throw new ApiError(response.status, error.code || 'generic', error.message || response.statusText);
    }
    return data;
  }

  function errorText(err) {
    const messages = t().errors;
    return messages[err.code] || (err.status === 401 ? messages.unauthorized : messages.generic);
  }

  function showChatError(err) {
    const box = $('chat-error');
    if (!err) { box.hidden = true; box.textContent = ''; return; }
    box.textContent = errorText(err);
    box.hidden = false;
  }

  // ---------------------------------------------------------------- language
  function applyLanguage() {
    const strings = t();
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = strings.title;
    for (const node of document.querySelectorAll('[data-i18n]')) {
      const value = strings[node.dataset.i18n];
      if (typeof value === 'string') node.textContent = value;
    }
    for (const node of document.querySelectorAll('[data-i18n-placeholder]')) {
      node.placeholder = strings[node.dataset.i18nPlaceholder] || '';
    }
    $('lang-toggle').textContent = strings.langToggle;
    $('lang-toggle').lang = state.lang === 'zh' ? 'en' : 'zh';
    setLive(state.socket && state.socket.readyState === WebSocket.OPEN);
    renderResolutions();
    renderQueue();
    renderTickets();
    if (state.current) renderConversation();
    loadCanned();
  }

  // ---------------------------------------------------------------- sign-in
  function showLogin(message) {
    stopLive();
    state.me = null;
    $('console').hidden = true;
    $('logout').hidden = true;
    $('agent-name').textContent = '';
    $('login').hidden = false;
    const error = $('login-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('login-username').focus();
  }

  async function start() {
    let me;
    try { me = await api('GET', '/auth/me'); } catch (err) { showLogin(); return; }
    if (me.role !== 'agent' && me.role !== 'admin') { showLogin(t().notAgent); return; }
    state.me = { id: me.kind === 'user' ? me.name : `${me.kind}:${me.name}`, name: me.name };
    $('login').hidden = true;
    $('console').hidden = false;
    $('logout').hidden = false;
    $('agent-name').textContent = me.name;
    try { state.resolutions = (await api('GET', '/agent/resolutions')).resolutions; } catch (err) { state.resolutions = []; }
    renderResolutions();
    await heartbeat();
    await Promise.all([loadQueue(), loadTickets(), loadCanned()]);
    connect();
    state.timers.push(setInterval(heartbeat, HEARTBEAT_MS));
    state.timers.push(setInterval(() => { loadQueue(); loadTickets(); }, QUEUE_POLL_MS));
    state.timers.push(setInterval(renderWaitTimes, 5000));
  }

  async function login(event) {
    event.preventDefault();
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    $('login-submit').disabled = true;
    try {
      await api('POST', '/auth/login', { username, password });
      $('login-password').value = '';
      await start();
    } catch (err) {
      showLogin(err.code === 'invalid_credentials' ? t().loginFailed : errorText(err));
    } finally {
      $('login-submit').disabled = false;
    }
  }

  async function logout() {
    try { await api('DELETE', '/agent/presence'); } catch (err) { /* signing out anyway */ }
    try { await api('POST', '/auth/logout'); } catch (err) { /* the cookie goes with the page */ }
    state.current = null;
    showLogin();
  }

  async function heartbeat() {
    try {
      const data = await api('POST', '/agent/presence');
      renderOnline(data.online_agents);
    } catch (err) { /* the socket keeps presence too; the next beat retries */ }
  }

  function renderOnline(agents) {
    if (Array.isArray(agents)) $('online-agents').textContent = t().onlineAgents(agents.length);
  }

  // ---------------------------------------------------------------- queue, mine, tickets
  async function loadQueue() {
    try {
      state.queue = await api('GET', '/agent/queue');
      state.fetchedAt = Date.now();
      renderQueue();
      renderOnline(state.queue.online_agents);
      watchMine();
    } catch (err) { /* shown on the next action */ }
  }

  async function loadTickets() {
    try {
      state.tickets = (await api('GET', '/agent/tickets?status=open')).tickets;
      renderTickets();
    } catch (err) { /* retried by the poll */ }
  }

  function waited(entry) {
    return entry.waiting_s + (entry.status === 'waiting' ? (Date.now() - state.fetchedAt) / 1000 : 0);
  }

  function renderWaitTimes() {
    for (const node of document.querySelectorAll('[data-testid="queue-wait"]')) {
      const entry = state.queue.waiting.find((e) => e.conversation_id === node.dataset.conversationId);
      if (entry) node.textContent = t().waiting(waited(entry));
    }
  }

  function renderQueue() {
    const strings = t();
    const list = $('queue-list');
    list.replaceChildren();
    for (const entry of state.queue.waiting || []) {
      const item = el('li', { class: 'item', 'data-testid': 'queue-item', 'data-conversation-id': entry.conversation_id });
      const head = el('div', { class: 'item-head' });
      head.append(
        el('span', { class: 'tag', 'data-testid': 'queue-language' }, strings.language[entry.language] || entry.language),
        el('span', { class: 'tag tag-reason', 'data-testid': 'queue-reason', title: strings.reason }, entry.reason),
        el('span', { class: 'muted', 'data-testid': 'queue-wait', 'data-conversation-id': entry.conversation_id }, strings.waiting(waited(entry))),
      );
      const summary = el('p', { class: 'item-summary', 'data-testid': 'queue-summary' }, entry.summary.text);
      const claimButton = el('button', { class: 'btn btn-primary btn-small', type: 'button', 'data-testid': 'claim' }, strings.claim);
      claimButton.addEventListener('click', () => claim(entry.conversation_id));
      item.append(head, el('div', { class: 'muted small' }, entry.conversation_id), summary, claimButton);
      list.append(item);
    }
    $('queue-empty').hidden = (state.queue.waiting || []).length > 0;
    $('queue-count').textContent = String((state.queue.waiting || []).length);

    const mine = $('mine-list');
    mine.replaceChildren();
    for (const entry of myConversations()) {
      const unread = state.unread.has(entry.conversation_id);
      const item = el('li', {
        class: `item clickable${state.current && state.current.conversation_id === entry.conversation_id ? ' active' : ''}`,
        'data-testid': 'mine-item', 'data-conversation-id': entry.conversation_id, 'data-unread': unread ? 'true' : 'false',
        tabindex: '0',
      });
      item.append(el('strong', {}, entry.conversation_id), el('span', { class: 'tag' }, strings.language[entry.language] || entry.language));
      if (unread) item.append(el('span', { class: 'tag tag-unread' }, strings.unread));
      item.append(el('p', { class: 'item-summary' }, entry.summary.text));
      item.addEventListener('click', () => openConversation(entry.conversation_id));
      item.addEventListener('keydown', (e) => { if (e.key === 'Enter') openConversation(entry.conversation_id); });
      mine.append(item);
    }
  }

  function myConversations() {
    return (state.queue.claimed || []).filter((e) => state.me && e.assignee === state.me.id);
  }

  function renderTickets() {
    const strings = t();
    const list = $('tickets-list');
    list.replaceChildren();
    for (const ticket of state.tickets || []) {
      const item = el('li', { class: 'item', 'data-testid': 'ticket-item', 'data-ticket-id': String(ticket.id) });
      const contact = [ticket.phone, ticket.email].filter(Boolean).join(' / ');
      item.append(
        el('strong', {}, strings.ticket(ticket.id)),
        el('span', { class: 'tag' }, strings.language[ticket.language] || ticket.language),
        el('div', { class: 'muted small' }, ticket.conversation_id),
        el('div', {}, `${strings.contact}: ${contact || strings.needContact}`),
        el('p', { class: 'item-summary' }, ticket.summary.text),
      );
      list.append(item);
    }
  }

  function renderResolutions() {
    const select = $('resolution');
    const chosen = select.value;
    select.replaceChildren();
    for (const r of state.resolutions) select.append(el('option', { value: r.code }, r.label[state.lang] || r.code));
    if (chosen) select.value = chosen;
  }

  async function loadCanned() {
    if (!state.me) return;
    const locale = (state.current && state.current.locale) || state.lang;
    const select = $('canned-select');
    try {
      const data = await api('GET', `/agent/canned?locale=${encodeURIComponent(locale)}`);
      select.replaceChildren(el('option', { value: '' }, t().canned));
      for (const reply of data.replies) select.append(el('option', { value: reply.text, 'data-canned-id': reply.id }, reply.title));
    } catch (err) { /* canned replies are a convenience */ }
  }

  // ---------------------------------------------------------------- one conversation
  async function claim(conversationId) {
    showChatError(null);
    try {
      await api('POST', `/agent/conversations/${encodeURIComponent(conversationId)}/claim`);
    } catch (err) {
      showChatError(err);
      await loadQueue();
      return;
    }
    await loadQueue();
    await openConversation(conversationId);
  }

  async function openConversation(conversationId) {
    showChatError(null);
    try {
      state.current = await api('GET', `/agent/conversations/${encodeURIComponent(conversationId)}`);
    } catch (err) { showChatError(err); return; }
    state.unread.delete(conversationId);
    watch(conversationId);
    renderConversation();
    renderQueue();
    loadCanned();
    $('reply-input').focus();
  }

  function isMine() {
    const view = state.current;
    return Boolean(view && view.owner === 'agent' && view.handoff && view.handoff.status === 'claimed'
      && state.me && view.handoff.assignee === state.me.id);
  }

  function renderConversation() {
    const view = state.current;
    const strings = t();
    $('chat-title').textContent = view.conversation_id;
    const owner = $('chat-owner');
    owner.dataset.owner = view.owner;
    owner.textContent = strings.owner[view.owner] || view.owner;
    const transcript = $('transcript');
    transcript.replaceChildren();
    state.shown = new Set();
    for (const message of view.messages) appendMessage(message, false);
    transcript.scrollTop = transcript.scrollHeight;
    renderSide();
    const mine = isMine();
    for (const id of ['reply-input', 'reply-send', 'canned-select', 'return-to-bot', 'close', 'resolution']) $(id).disabled = !mine;
    for (const id of ['note-input', 'note-send']) $(id).disabled = false;
  }

  function resolutionLabel(code) {
    const found = state.resolutions.find((r) => r.code === code);
    return found ? (found.label[state.lang] || code) : (code || '');
  }

  function systemText(message) {
    const s = t().system;
    if (message.kind === 'claimed') return s.claimed(message.agent || '');
    if (message.to === 'agent') return s.toAgent(message.reason || '');
    if (message.to === 'closed') return s.closed(resolutionLabel(message.resolution) || message.reason || '');
    return s.toBot;
  }

  function appendMessage(message, scroll = true) {
    if (message.message_id && message.role !== 'system') {
      const key = `${message.role}:${message.message_id}`;
      if (state.shown.has(key)) return;
      state.shown.add(key);
    }
    const strings = t();
    const node = el('div', { class: `msg msg-${message.role}`, 'data-testid': 'message', 'data-role': message.role, 'data-message-id': message.message_id || null });
    if (message.role === 'system') {
      node.textContent = systemText(message);
    } else {
      const who = message.role === 'agent' && message.agent ? `${strings.roles.agent} · ${message.agent}` : strings.roles[message.role];
      node.append(el('div', { class: 'msg-meta' }, `${who} ${fmtTime(message.ts)}`), el('div', { class: 'msg-text' }, message.text));
    }
    const transcript = $('transcript');
    transcript.append(node);
    if (scroll) transcript.scrollTop = transcript.scrollHeight;
  }

  function renderSide() {
    const view = state.current;
    const strings = t();
    const summary = $('summary');
    summary.replaceChildren();
    if (view.handoff) {
      const s = view.handoff.summary;
      summary.append(
        el('p', {}, s.text),
        el('p', { class: 'muted small' }, `${strings.reason}: ${view.handoff.reason} · ${strings.intent}: ${s.intent || '-'} · ${strings.source[s.source] || s.source}`),
      );
    }
    const orders = $('orders-list');
    orders.replaceChildren();
    if (!view.orders.length) orders.append(el('li', { class: 'muted' }, strings.noOrders));
    for (const entry of view.orders) {
      const item = el('li', { class: 'item', 'data-testid': 'order-item', 'data-order-id': entry.order_id });
      const order = entry.order || {};
      const name = localized(order.item);
      item.append(el('strong', {}, `#${entry.order_id}`), el('span', { class: 'tag' }, entry.found ? (order.status || '') : strings.notFound));
      if (name) item.append(el('div', {}, name));
      const amount = typeof order.amount === 'number' ? `¥${order.amount}` : '';
      const facts = [localized(order.carrier), localized(order.tracking), amount, localized(order.delivered_on)].filter(Boolean);
      if (facts.length) item.append(el('div', { class: 'muted small' }, facts.join(' · ')));
      orders.append(item);
    }
    const notes = $('notes-list');
    notes.replaceChildren();
    if (!view.notes.length) notes.append(el('li', { class: 'muted' }, strings.noNotes));
    for (const note of view.notes) appendNote(note);
    const bot = $('bot-transcript');
    bot.replaceChildren();
    for (const message of view.bot_transcript) {
      bot.append(el('div', { class: `bot-line bot-line-${message.role}`, 'data-testid': 'bot-message', 'data-role': message.role }, `${strings.roles[message.role]}: ${message.text}`));
    }
  }

  function appendNote(note) {
    const list = $('notes-list');
    const empty = list.querySelector('.muted');
    if (empty) empty.remove();
    if (note.id && list.querySelector(`[data-note-id="${CSS.escape(note.id)}"]`)) return;
    const item = el('li', { class: 'item note', 'data-testid': 'note-item', 'data-note-id': note.id || null });
    item.append(el('div', { class: 'msg-meta' }, `${note.agent} ${fmtTime(note.ts)}`), el('div', {}, note.text));
    list.append(item);
  }

  async function sendReply(event) {
    event.preventDefault();
    const view = state.current;
    const input = $('reply-input');
    const text = input.value;
    if (!view || !text.trim()) { showChatError(new ApiError(422, 'empty_text', '')); return; }
    const messageId = `console-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    $('reply-send').disabled = true;
    showChatError(null);
    try {
      const reply = await api('POST', `/agent/conversations/${encodeURIComponent(view.conversation_id)}/messages`, { text, message_id: messageId });
      input.value = '';
      $('canned-select').value = '';
      appendMessage(reply);
    } catch (err) {
      showChatError(err);
    } finally {
      $('reply-send').disabled = !isMine();
    }
  }

  async function addNote(event) {
    event.preventDefault();
    const view = state.current;
    const input = $('note-input');
    if (!view || !input.value.trim()) return;
    try {
      const note = await api('POST', `/agent/conversations/${encodeURIComponent(view.conversation_id)}/notes`, { text: input.value });
      input.value = '';
      appendNote(note);
    } catch (err) { showChatError(err); }
  }

  async function release(action) {
    const view = state.current;
    if (!view) return;
    showChatError(null);
    const path = `/agent/conversations/${encodeURIComponent(view.conversation_id)}/${action}`;
    try {
      await api('POST', path, action === 'close' ? { resolution: $('resolution').value } : undefined);
    } catch (err) { showChatError(err); return; }
    await loadQueue();
    await loadTickets();
    await openConversation(view.conversation_id);
  }

  // ---------------------------------------------------------------- live
  function setLive(on) {
    const node = $('live-status');
    node.dataset.state = on ? 'live' : 'offline';
    node.textContent = on ? t().live : t().offline;
  }

  function send(frame) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(frame));
  }

  function watch(conversationId) {
    state.watched.add(conversationId);
    send({ action: 'watch', conversation_id: conversationId });
  }

  function watchMine() {
    for (const entry of myConversations()) if (!state.watched.has(entry.conversation_id)) watch(entry.conversation_id);
  }

  function connect() {
    if (!state.me) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/agent/ws`);
    state.socket = socket;
    socket.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (err) { return; }
      onEvent(frame);
    });
    socket.addEventListener('close', (event) => {
      setLive(false);
      if (state.socket !== socket || !state.me) return;
      if (event.code === 4401) { showLogin(); return; }
      const delay = Math.min(30000, 500 * 2 ** Math.min(state.socketTries++, 6));
      setTimeout(connect, delay);
    });
  }

  function stopLive() {
    for (const timer of state.timers) clearInterval(timer);
    state.timers = [];
    const socket = state.socket;
    state.socket = null;
    state.watched = new Set();
    if (socket) socket.close();
  }

  let queueReload = null;
  function reloadQueueSoon() {
    if (queueReload) return;
    queueReload = setTimeout(() => { queueReload = null; loadQueue(); }, 150);
  }

  function onEvent(frame) {
    const current = state.current && state.current.conversation_id;
    switch (frame.event) {
      case 'hello': {
        state.socketTries = 0;
        setLive(true);
        renderOnline(frame.online_agents);
        const again = [...state.watched];
        state.watched = new Set();
        for (const cid of again) watch(cid);
        watchMine();
        loadQueue();
        break;
      }
      case 'queue':
        reloadQueueSoon();
        if (frame.conversation_id === current && frame.action === 'updated' && state.current.handoff) {
          state.current.handoff = frame.entry;
          renderSide();
        }
        break;
      case 'ticket':
        loadTickets();
        break;
      case 'note':
        if (frame.conversation_id === current) appendNote(frame.note);
        break;
      case 'customer_message':
        if (frame.conversation_id === current) appendMessage(frame);
        else { state.unread.add(frame.conversation_id); renderQueue(); }
        break;
      case 'message':
        if (frame.conversation_id === current && frame.text) appendMessage({ role: frame.role, text: frame.text, ts: frame.ts, message_id: frame.message_id });
        break;
      case 'owner':
        if (frame.conversation_id === current) openConversation(current);
        reloadQueueSoon();
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- wiring
  function init() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('lang-toggle').addEventListener('click', () => {
      state.lang = state.lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem(LANG_KEY, state.lang);
      applyLanguage();
    });
    $('reply-form').addEventListener('submit', sendReply);
    $('reply-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) { event.preventDefault(); $('reply-form').requestSubmit(); }
    });
    $('canned-select').addEventListener('change', (event) => {
      if (event.target.value) { $('reply-input').value = event.target.value; $('reply-input').focus(); }
    });
    $('note-form').addEventListener('submit', addNote);
    $('return-to-bot').addEventListener('click', () => release('return'));
    $('close').addEventListener('click', () => release('close'));
    applyLanguage();
    start();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
