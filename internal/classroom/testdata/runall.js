// Drives the classic Notebook UI through a JupyterHub as a student would: log in, open a
// notebook, Cell > Run All, wait, save; then optionally run one probe cell. Prints one JSON line.
// Usage: node runall.js HUB_URL USER PASSWORD NOTEBOOK_PATH SCREENSHOT.png TIMEOUT_S [PROBE_CODE]
const puppeteer = require('puppeteer-core');

const [hub, user, password, nbPath, shot, timeoutS, probe] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutS) * 1000;

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    headless: true,
    // A page-side wait is one protocol call: puppeteer's default limit (180 s) would end Run All
    // on a loaded machine before TIMEOUT_S does.
    protocolTimeout: (Number(timeoutS) + 60) * 1000,
  });
  const result = {};
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 900 });
    page.setDefaultTimeout(120000);
    await page.goto(hub + 'hub/login', { waitUntil: 'networkidle2' });
    await page.type('#username_input', user);
    await page.type('#password_input', password);
    let t0 = Date.now();
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle2' }), page.click('#login_submit')]);
    // The spawn page redirects to the server once it is up.
    await page.waitForFunction(() => location.pathname.includes('/user/'), { timeout: 120000 });
    result.spawn_s = (Date.now() - t0) / 1000;
    await page.goto(hub + 'user/' + user + '/notebooks/' + nbPath, { waitUntil: 'networkidle2' });
    await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel &&
      Jupyter.notebook.kernel.is_connected(), { timeout: 120000 });
    t0 = Date.now();
    await page.click('#celllink');
    await page.click('#run_all_cells a');
    // Done when no cell waits or runs and the kernel is idle.
    await page.waitForFunction(() => {
      const cells = Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code');
      return !Jupyter.notebook.kernel_busy && cells.every(c => c.input_prompt_number !== '*');
    }, { timeout: Math.max(1000, deadline - Date.now()), polling: 500 });
    result.run_all_s = (Date.now() - t0) / 1000;
    Object.assign(result, await page.evaluate(() => {
      const cells = Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code');
      return {
        code_cells: cells.length,
        executed: cells.filter(c => typeof c.input_prompt_number === 'number').length,
        // A failed cell (panic, compile error) is an error output; stderr also carries the
        // packages' one-line notices (which engine runs a model), reported apart.
        errors: Array.from(document.querySelectorAll('.output_error')).map(e => e.innerText.slice(0, 300)),
        stderr: Array.from(document.querySelectorAll('.output_stderr')).map(e => e.innerText.slice(0, 300)),
        images: document.querySelectorAll('.output_png img, .output_subarea img').length,
        text: Array.from(document.querySelectorAll('.output_text')).map(e => e.innerText).join('\n').slice(-4000),
      };
    }));
    await page.evaluate(() => Jupyter.notebook.save_notebook());
    await page.waitForFunction(() => !Jupyter.notebook.dirty, { timeout: 30000 });
    await page.evaluate(() => { document.querySelector('#site').style.height = 'auto'; });
    await page.screenshot({ path: shot, fullPage: true });
    if (probe) {
      const out = await page.evaluate((code) => new Promise((resolve) => {
        let text = '';
        Jupyter.notebook.kernel.execute(code, {
          iopub: { output: (msg) => { text += (msg.content.text || '') + (msg.content.evalue || '') + JSON.stringify(msg.content.data || ''); } },
          shell: { reply: () => setTimeout(() => resolve(text), 500) },
        }, { silent: false, store_history: false });
      }), probe);
      result.probe = out;
    }
  } catch (e) {
    result.failure = String(e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
})();
