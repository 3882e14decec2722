// tether's dashboard script: refreshes the agents table (and the fleet lines) from
// /api/status every few seconds, without reloading. No framework; values from the server are
// only ever set as text, never parsed as HTML. A read token given as `?token=` is kept by the
// server in an HttpOnly cookie, so it is dropped from the address bar here and never handled.
(function () {
  'use strict';
  var EVERY_MS = 3000;
  var updated = document.getElementById('updated');

  if (new URLSearchParams(location.search).has('token')) {
    history.replaceState(null, '', location.pathname);
  }

  var rows = document.getElementById('agent-rows');
  if (!rows) {
    return;
  }
  var only = document.getElementById('agents').getAttribute('data-only');

  function dash(v) {
    return v === null || v === undefined || v === '' ? '-' : String(v);
  }

  function phaseClass(phase) {
    return 'phase-' + String(phase).replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  }

  // The same cells as `tether status` (audit::overview::cells).
  function cells(a) {
    var device = a.deviceOnline === null || a.deviceOnline === undefined
      ? null : (a.deviceOnline ? 'online' : 'offline');
    var action = a.lastAction ? a.lastAction + ' ' + (a.lastActionAt || '') : null;
    var error = a.lastError || (a.deleteAfter ? 'quarantined until ' + a.deleteAfter : null);
    return [a.agent, a.customer, a.subscription, a.phase, a.serverId, a.serverType,
      a.location, a.ipv4, device, a.age, action, error, a.runtime].map(dash);
  }

  function row(a) {
    var tr = document.createElement('tr');
    var cls = phaseClass(a.phase);
    tr.className = cls;
    tr.setAttribute('data-agent', a.agent);
    cells(a).forEach(function (text, i) {
      var td = document.createElement('td');
      if (i === 0) {
        var link = document.createElement('a');
        link.setAttribute('href', '/agents/' + encodeURIComponent(a.agent));
        link.textContent = text;
        td.appendChild(link);
      } else if (i === 3) {
        var badge = document.createElement('span');
        badge.className = 'phase ' + cls;
        badge.textContent = text;
        td.appendChild(badge);
      } else {
        td.textContent = text;
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  }

  function render(status) {
    var agents = status.agents.filter(function (a) { return !only || a.agent === only; });
    rows.replaceChildren.apply(rows, agents.map(row));
    if (!only) {
      var counts = Object.keys(status.phases).map(function (p) { return status.phases[p] + ' ' + p; });
      setText('agent-count', status.agents.length + ' (' + counts.join(', ') + ')');
      setText('last-pass', dash(status.lastPass));
      setText('suspended', status.suspended ? 'yes' : 'no');
      setText('last-error', dash(status.lastError));
    }
    updated.textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function poll() {
    fetch('/api/status', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)); })
      .then(render)
      .catch(function (e) { updated.textContent = 'refresh failed: ' + e.message; });
  }

  setInterval(poll, EVERY_MS);
}());
