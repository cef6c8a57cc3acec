// Measures what one machine gives a class, through the hub as students use it (deploy/capacity.sh
// starts the class and calls this). Each student logs in with Chromium, opens the activity
// notebook, runs its setup cell, then the model cell below (VGG16 built from the weights and one
// prediction, uncached) through the page's own kernel connection.
//
// For each level n of COUNTS (ascending): the students new at this level run the model cell for
// the first time (a new student: Go build cache as seeded at 'classroom start'), then all n run
// it again at the same moment (warm). Level 1 is the new-versus-warm comparison; the warm rows of
// every level make the capacity curve. While cells run, every student's processes (notebook
// server, GoNB kernel, compiler, the cell's program) are sampled every 0.5 s from /proc: the
// peak of the sum of their RSS is that student's memory (shared pages count once per process).
//
// A level is skipped, and says so, when n times the largest per-student peak so far does not fit
// in MemAvailable less a reserve (the machine may be shared).
//
// Usage: node capacity.js HUB_URL CLASS_DIR NOTEBOOK COUNTS STUDENTS   (COUNTS, STUDENTS: a,b,c)
// Prints one JSON object per measured cell ("row") and a Markdown table at the end.
const puppeteer = require('puppeteer-core');
const fs = require('fs');
const os = require('os');
const { execFileSync } = require('child_process');

const [hub, classDir, nbPath, countsArg, studentsArg] = process.argv.slice(2);
const counts = countsArg.split(',').map(Number).sort((a, b) => a - b);
const students = studentsArg.split(',');
const reserve = Number(process.env.CAPACITY_RESERVE_GIB || 3) * 2 ** 30;
const cellTimeoutMs = Number(process.env.CAPACITY_CELL_TIMEOUT_S || 1500) * 1000;

const passwords = Object.fromEntries(fs.readFileSync(classDir + '/passwords.txt', 'utf8').trim().split('\n')
  .map((l) => l.trim().split(/\s+/)));
const uid = Object.fromEntries(students.map((s) => [s, Number(execFileSync('id', ['-u', s]).toString())]));

// The model cell: what a student's prediction costs, without the prediction cache.
const modelCell = `import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

%%
x := kernelext.PreprocessInput(kernelext.ExpandDims(kernelext.ImgToArray(
	kernelext.MustLoadImg(filepath.Join(datasets.MustPredictionDir(), "test_image_1.jpg"), kernelext.TargetSize(224, 224))), 0))
start := time.Now()
m := applications.MustLazyVGG16().MustModel()
loaded := time.Now()
y := m.MustPredict(x)
fmt.Printf("load_s=%.3f predict_s=%.3f\\n", loaded.Sub(start).Seconds(), time.Since(loaded).Seconds())
fmt.Println(kernelext.FormatPredictions(kernelext.MustDecodePredictions(y, 5)))
`;

const gib = (b) => (b / 2 ** 30).toFixed(2);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

function memAvailable() {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
}

// rssByUID sums VmRSS over every process, per user.
function rssByUID() {
  const out = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try { st = fs.readFileSync(`/proc/${d}/status`, 'utf8'); } catch { continue; }
    const u = /^Uid:\s+(\d+)/m.exec(st);
    const r = /^VmRSS:\s+(\d+) kB/m.exec(st);
    if (u && r) out.set(Number(u[1]), (out.get(Number(u[1])) || 0) + Number(r[1]) * 1024);
  }
  return out;
}

// peakRSS samples the given students' RSS until the returned stop() is called.
function peakRSS(names) {
  const peak = Object.fromEntries(names.map((s) => [s, 0]));
  const sample = () => {
    const m = rssByUID();
    for (const s of names) peak[s] = Math.max(peak[s], m.get(uid[s]) || 0);
  };
  sample();
  const timer = setInterval(sample, 500);
  return () => { clearInterval(timer); sample(); return peak; };
}

async function login(browser, s) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.setDefaultTimeout(300000);
  await page.goto(hub + 'hub/login', { waitUntil: 'networkidle2' });
  await page.type('#username_input', s);
  await page.type('#password_input', passwords[s]);
  const t0 = Date.now();
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle2' }), page.click('#login_submit')]);
  await page.waitForFunction(() => location.pathname.includes('/user/'), { timeout: 180000 });
  const spawnS = (Date.now() - t0) / 1000;
  await page.goto(hub + 'user/' + s + '/notebooks/' + nbPath, { waitUntil: 'networkidle2' });
  await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel &&
    Jupyter.notebook.kernel.is_connected(), { timeout: 180000 });
  const setup = await page.evaluate(() => Jupyter.notebook.get_cells().find((c) => c.cell_type === 'code').get_text());
  return { page, spawnS, setup };
}

// run executes code in the page's kernel and times it from the request to the kernel's reply.
async function run(page, code) {
  return page.evaluate((code, timeoutMs) => new Promise((resolve) => {
    const t0 = performance.now();
    let text = '';
    let error = '';
    const timer = setTimeout(() => resolve({ s: (performance.now() - t0) / 1000, status: 'timeout', text, error }), timeoutMs);
    Jupyter.notebook.kernel.execute(code, {
      iopub: {
        output: (msg) => {
          const c = msg.content;
          if (msg.msg_type === 'error') error += c.ename + ': ' + c.evalue + '\n';
          if (c.text) text += c.text;
          if (c.data && c.data['text/plain']) text += c.data['text/plain'];
          if (c.data && c.data['text/html']) text += c.data['text/html'].replace(/<[^>]*>/g, ' ');
        },
      },
      shell: {
        reply: (msg) => {
          const s = (performance.now() - t0) / 1000;
          clearTimeout(timer);
          setTimeout(() => resolve({ s, status: msg.content.status, text, error }), 300);
        },
      },
    }, { silent: false, store_history: false });
  }), code, cellTimeoutMs);
}

const rows = [];

// cells runs the model cell for the named students at once and records one row each.
async function cells(sessions, names, phase, level) {
  const loadBefore = load();
  const stop = peakRSS(names);
  const t0 = Date.now();
  const res = await Promise.all(names.map((s) => run(sessions[s].page, modelCell)));
  const wall = (Date.now() - t0) / 1000;
  const peak = stop();
  await new Promise((r) => setTimeout(r, 2000));
  const idle = rssByUID();
  names.forEach((s, i) => {
    const r = res[i];
    const m = /load_s=([\d.]+) predict_s=([\d.]+)/.exec(r.text);
    const row = {
      level, phase, at_once: names.length, student: s, cell_s: +r.s.toFixed(1), status: r.status,
      load_s: m ? +m[1] : null, predict_s: m ? +m[2] : null, phase_wall_s: +wall.toFixed(1),
      peak_rss_gib: +gib(peak[s]), idle_rss_gib: +gib(idle.get(uid[s]) || 0),
      load_before: loadBefore, load_after: load(),
    };
    if (r.status !== 'ok' || !m) row.output = (r.error + r.text).slice(-1500);
    rows.push(row);
    console.log(JSON.stringify(row));
  });
  return res.every((r) => r.status === 'ok');
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    headless: true,
    protocolTimeout: cellTimeoutMs + 60000,
  });
  const sessions = {};
  let ok = true;
  let peakSoFar = 0;
  try {
    for (const n of counts) {
      if (n > students.length) throw new Error(`level ${n}: only ${students.length} students`);
      const names = students.slice(0, n);
      const fresh = names.filter((s) => !sessions[s]);
      const need = n * peakSoFar;
      if (peakSoFar > 0 && need > memAvailable() - reserve) {
        console.log(JSON.stringify({ level: n, skipped: `needs about ${gib(need)} GiB (${n} × ${gib(peakSoFar)}), ` +
          `MemAvailable is ${gib(memAvailable())} GiB with ${gib(reserve)} GiB kept free` }));
        break;
      }
      for (const s of fresh) {
        sessions[s] = await login(browser, s);
        const r = await run(sessions[s].page, sessions[s].setup);
        console.log(JSON.stringify({ level: n, student: s, login_to_server_s: sessions[s].spawnS, setup_cell_s: +r.s.toFixed(1), status: r.status }));
        if (r.status !== 'ok') throw new Error(`${s}: setup cell: ${r.error}${r.text}`);
      }
      if (fresh.length > 0) ok = (await cells(sessions, fresh, 'first', n)) && ok;
      ok = (await cells(sessions, names, 'warm', n)) && ok;
      for (const r of rows) if (r.level === n) peakSoFar = Math.max(peakSoFar, r.peak_rss_gib * 2 ** 30);
    }
  } catch (e) {
    ok = false;
    console.log(JSON.stringify({ failure: String(e) }));
  } finally {
    await browser.close();
  }

  // The cgroup's own peak (cgroup v1 max_usage_in_bytes or v2 memory.peak: page cache included).
  let cg = {};
  try { cg = JSON.parse(fs.readFileSync(classDir + '/state.json', 'utf8')).cgroups || {}; } catch { }
  const cgPeak = (s) => {
    for (const p of cg[s] || []) {
      for (const f of ['memory.peak', 'memory.max_usage_in_bytes']) {
        try { return gib(Number(fs.readFileSync(require('path').dirname(p) + '/' + f, 'utf8'))); } catch { }
      }
    }
    return '';
  };

  console.log('\n| level | phase | at once | student | cell s | load s | predict s | peak RSS GiB | idle RSS GiB | load avg before → after |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.level} | ${r.phase} | ${r.at_once} | ${r.student} | ${r.cell_s} | ${r.load_s} | ${r.predict_s} | ${r.peak_rss_gib} | ${r.idle_rss_gib} | ${r.load_before} → ${r.load_after} |`);
  }
  console.log('\ncgroup peak (GiB, page cache included, whole run): ' + students.filter((s) => sessions[s]).map((s) => `${s} ${cgPeak(s)}`).join(', '));
  process.exit(ok ? 0 : 1);
})();
