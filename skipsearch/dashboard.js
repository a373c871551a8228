// The dashboard page's script: draws the study's data (payload.py) and, served, polls for updates.
const $ = id => document.getElementById(id);
let DATA = JSON.parse($('data').textContent), VERSION = DATA.version || '', OPEN = null, WIRED = false;
const COMPARE = new Set(), BEST = {};
function sortTable(id, col) {
  const t = $(id), body = t.tBodies[0], rows = Array.from(body.rows);
  const dir = t.dataset.col == col && t.dataset.dir == 'asc' ? 'desc' : 'asc';
  t.dataset.col = col; t.dataset.dir = dir;
  const key = r => { const v = r.cells[col].dataset.v; const n = parseFloat(v); return isNaN(n) ? v : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * (dir == 'asc' ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}
function trialOf(n) { return DATA.trials.find(t => t.number == n); }
function el(tag, text, attrs) { const e = document.createElement(tag); if (text != null) e.textContent = text; Object.assign(e, attrs || {}); return e; }
function react(id, data, layout) {
  const div = $(id); if (!div) return;
  div.hidden = false;
  Plotly.react(div, data, Object.assign({}, layout, {uirevision: 'keep'}), {responsive: true});
}
function highlight() {  // the picked "best under" trials, as rings on the Pareto plot
  const ax = DATA.axes, picked = Object.values(BEST).map(trialOf).filter(t => t);
  return picked.length ? [{x: picked.map(t => t.values[ax.x] / ax.x_div), y: picked.map(t => t.values[ax.y] / ax.y_div),
    mode: 'markers', name: 'best under the picked budget', hoverinfo: 'skip',
    marker: {symbol: 'circle-open', size: 28, color: '#d62728', line: {width: 3}}}] : [];
}
function draw() {
  for (const name of FIGURES) {
    const fig = DATA.figures[name], div = $('fig-' + name);
    if (!fig) { if (div) div.hidden = true; continue; }
    react('fig-' + name, name == 'pareto' ? fig.data.concat(highlight()) : fig.data, fig.layout);
  }
  $('meta').innerHTML = DATA.meta; $('note').innerHTML = DATA.note;  // escaped when built
  $('pareto-tables').innerHTML = DATA.tables.pareto; $('skip-tables').innerHTML = DATA.tables.skip;
  pickers(); compare();
  if (OPEN !== null) openTrial(OPEN);
  if (!WIRED && $('fig-pareto').on) {
    $('fig-pareto').on('plotly_click', e => { const n = e.points[0].customdata; if (n != null) openTrial(n); });
    WIRED = true;
  }
}
const compact = new Intl.NumberFormat('en', {notation: 'compact', maximumSignificantDigits: 3});
function amount(p, v) { return p.div != 1 ? `${(v / p.div).toPrecision(3)} ${p.label.match(/\((.*)\)$/) ? p.label.match(/\((.*)\)$/)[1] : ''}` : compact.format(v); }
function pickers() {
  const box = $('pickers'); box.replaceChildren();
  const y = DATA.axes.y, up = DATA.objectives[0].direction == 'maximize';
  for (const p of DATA.pickers) {
    const row = el('div', null, {className: 'pick'}), out = el('span');
    const input = el('input', null, {type: 'range', min: p.min, max: p.max, step: (p.max - p.min) / 200, id: 'pick-' + p.name});
    input.value = BEST['v' + p.name] != null ? BEST['v' + p.name] : p.max;
    const pick = () => {
      const limit = parseFloat(input.value); BEST['v' + p.name] = limit;
      const ok = DATA.trials.filter(t => t.state == 'COMPLETE' && t.feasible && t.values[p.name] != null && t.values[p.name] <= limit && t.values[y] != null);
      ok.sort((a, b) => up ? b.values[y] - a.values[y] : a.values[y] - b.values[y]);
      if (ok.length) { BEST[p.name] = ok[0].number; out.textContent = ` ${amount(p, limit)}: trial #${ok[0].number}, ${y} ${ok[0].text[y]}, ${p.name} ${ok[0].text[p.name]}`; }
      else { delete BEST[p.name]; out.textContent = ` ${amount(p, limit)}: no trial within it`; }
    };
    input.oninput = () => { pick(); const f = DATA.figures.pareto; react('fig-pareto', f.data.concat(highlight()), f.layout); };
    const open = el('button', 'open', {onclick: () => { if (BEST[p.name] != null) openTrial(BEST[p.name]); }});
    row.append(el('span', `best ${y} under ${p.label} `), input, out, el('span', ' '), open);
    box.append(row); pick();
  }
}
function openTrial(n) {
  const t = trialOf(n), box = $('trial'); if (!t) return;
  OPEN = n; box.hidden = false; box.replaceChildren();
  box.append(el('h2', `Trial #${t.number} (${t.state}${t.pareto ? ', on the front' : ''}${t.preset ? ', preset ' + t.preset : ''})`));
  box.append(el('p', t.summary));
  if (t.note) box.append(el('p', t.note, {className: 'note'}));
  const table = el('table'), body = el('tbody'); table.append(body);
  for (const [name, text] of Object.entries(t.text)) {
    const tr = el('tr'); tr.append(el('td', name), el('td', text + (t.std[name] != null ? `  (std over seeds ${t.std[name].toPrecision(3)})` : '')));
    body.append(tr);
  }
  box.append(table);
  if (t.seeds.length > 1) box.append(el('p', `${t.seeds.length} seeds, ${DATA.axes.y}: ${t.seeds.map(s => s.toPrecision(4)).join(', ')}` +
    (t.confidence != null ? `; on the front in ${Math.round(100 * t.confidence)} % of bootstrap resamples` : '')));
  else box.append(el('p', 'one seed (the study did not repeat this trial)'));
  if (t.export) { const p = el('p', 'export: '); p.append(el('code', t.export)); box.append(p); }
  const figs = el('div'); figs.style.display = 'flex'; box.append(figs);
  const tl = el('div', null, {id: 'fig-trial-timeline'}), cv = el('div', null, {id: 'fig-trial-curve'});
  tl.style.width = cv.style.width = '50%'; figs.append(tl, cv);
  const front = DATA.front.map(trialOf).filter(b => b && b.timeline.length);
  const best = front.filter(b => b.number != t.number)[0], label = front[0] === t ? ' (front, next most accurate)' : ' (the front\'s most accurate)';
  const lines = [t, best].filter(x => x && x.timeline.length).map(x => ({x: x.stages, y: x.timeline, mode: 'lines+markers',
    name: `#${x.number}` + (x === best ? label : '')}));
  react('fig-trial-timeline', lines, {title: 'skip memory through inference', yaxis: {title: {text: 'M_E1'}}, height: 320});
  react('fig-trial-curve', [{x: t.curve.map(c => c[0]), y: t.curve.map(c => c[1]), mode: 'lines+markers', name: DATA.axes.y}],
    {title: t.curve.length ? 'learning curve at the rungs' : 'no rungs recorded', xaxis: {title: {text: 'step'}},
     yaxis: {title: {text: DATA.axes.y}}, height: 320});
  const add = el('button', COMPARE.has(n) ? 'in the comparison' : 'compare', {onclick: () => { COMPARE.add(n); compare(); openTrial(n); }});
  const close = el('button', 'close', {onclick: () => { OPEN = null; box.hidden = true; history.replaceState(null, '', '#'); }});
  const spec = el('details'); spec.append(el('summary', 'spec JSON'), el('pre', t.spec));
  box.append(add, close, spec);
  if (location.hash != '#trial=' + n) history.replaceState(null, '', '#trial=' + n);
}
function compare() {
  const box = $('compare'); box.replaceChildren();
  const ts = Array.from(COMPARE).map(trialOf).filter(t => t);
  if (!ts.length) { box.append(el('p', 'Open a trial and press "compare" to put trials side by side.')); return; }
  const table = el('table'), head = el('tr'); head.append(el('th', ''));
  ts.forEach(t => { const th = el('th', `#${t.number} `); th.append(el('button', 'x', {onclick: () => { COMPARE.delete(t.number); compare(); }})); head.append(th); });
  const body = el('tbody'); table.append(el('thead'), body); table.tHead.append(head);
  const names = Array.from(new Set(ts.flatMap(t => Object.keys(t.text))));
  for (const row of [['state', t => t.state], ['summary', t => t.summary], ...names.map(n => [n, t => t.text[n] || '-'])]) {
    const tr = el('tr'); tr.append(el('td', row[0])); ts.forEach(t => tr.append(el('td', row[1](t)))); body.append(tr);
  }
  box.append(table);
}
async function poll() {
  try {
    const r = await fetch('api/results', {headers: VERSION ? {'If-None-Match': VERSION} : {}, cache: 'no-store'});
    if (r.status == 304) { $('live').textContent = 'live, up to date ' + new Date().toLocaleTimeString(); return; }
    const d = await r.json();
    if (!r.ok) { $('live').textContent = 'live: ' + (d.error || r.status); return; }
    DATA = d; VERSION = r.headers.get('ETag') || ''; draw();
    $('live').textContent = 'live, updated ' + new Date().toLocaleTimeString();
  } catch (err) { $('live').textContent = 'live: the server does not answer (' + err + ')'; }
}
draw();
const m = location.hash.match(/^#trial=(\d+)$/); if (m) openTrial(parseInt(m[1]));
if (DATA.live && location.protocol.startsWith('http')) setInterval(poll, DATA.live.poll_ms);
