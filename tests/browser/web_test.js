// Browser test of the Homeward pages in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium). Starts a real homeward-server with --http-listen on a free port and a
// fresh keys file, then: a volunteer signs in (keyboard only) on a phone-sized screen,
// uploads a street photo and sees its face with the quality verdict and a candidate, then a
// photo of a child no case resembles and sees a plain sentence instead of a row of strangers;
// an investigator searches by photo, sees ranked candidates with the lead threshold marked,
// opens the side-by-side review, and searches with the child's age (a case left out for its
// age, then shown with an "age-inconsistent" badge on request).
// Screenshots go to $HOMEWARD_TEST_OUTPUT. Exit code 0 = pass.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const SOURCE = path.resolve(__dirname, '..', '..');
const SERVER = process.env.HOMEWARD_SERVER_BINARY ||
  path.join(SOURCE, 'build-web', 'server', 'homeward-server');
const CHROMIUM = process.env.HOMEWARD_CHROMIUM || '/usr/bin/chromium';
const DEMO = process.env.HOMEWARD_DEMO_DIR ||
  path.join(SOURCE, 'models', 'cache', 'face-api-1.7.15', 'demo');
const OUT = process.env.HOMEWARD_TEST_OUTPUT || path.join(os.tmpdir(), 'homeward-web-test');
const PHOTO = path.join(DEMO, 'sample2.jpg');
// Three children each; face 0 of sample3 is a second MISSING child, and no face of sample4
// resembles either registered child (distances over 0.65 to both).
const OTHER_PHOTO = path.join(DEMO, 'sample3.jpg');
const STRANGER_PHOTO = path.join(DEMO, 'sample4.jpg');

function addKey(keysFile, role, id) {
  return execFileSync(SERVER, ['--add-key', role, '--key-id', id, '--api-keys', keysFile],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

// Starts the server; resolves with {proc, base} once it prints "http listening on".
function startServer(dir, keysFile) {
  const proc = spawn(SERVER, [
    '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'),
    '--api-keys', keysFile, '--workers', '2', '--shutdown-grace-ms', '2000',
  ].concat(fs.existsSync(path.join(SOURCE, 'models', 'age_calibration_v1.json')) ? []
    : ['--calibration', 'none']),  // the pages do not depend on calibration
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), 120000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve({ proc, base: 'http://' + m[1], log: () => log }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${log}`)); });
  });
}

async function api(base, key, method, p, body) {
  const res = await fetch(base + p, {
    method, headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `${method} ${p}: ${JSON.stringify(json)}`);
  return json;
}

async function signIn(page, base, key) {
  await page.goto(base + '/');
  await page.getByLabel('API key').focus();
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');  // the form submits from the keyboard
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 1);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'the key stays out of localStorage');
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw_web_'));
  const keysFile = path.join(dir, 'keys.jsonl');
  const keys = {
    vol: addKey(keysFile, 'volunteer', 'vol'),
    inv: addKey(keysFile, 'investigator', 'inv'),
  };
  const server = await startServer(dir, keysFile);
  let context;
  try {
    const { base } = server;
    // Seed: an investigator registers a MISSING child with a photo, through the gateway.
    const created = await api(base, keys.inv, 'POST', '/v1/cases',
      { kind: 'MISSING', displayName: 'Test Child', place: 'Springfield', eventDate: '2024-03-01' });
    const jpeg = fs.readFileSync(PHOTO);
    // sample2.jpg shows three faces to the CNN detector (the default). As a frontend does, the
    // first try without a face index is refused with the faces' boxes; the child is the
    // right-hand face (the one HOG finds alone), chosen by its box, not by its place in the list.
    const photoBody = { image: jpeg.toString('base64'), takenOn: '2023-06-01' };
    const unchosen = await fetch(base + `/v1/cases/${created.id}/photos`, {
      method: 'POST', body: JSON.stringify(photoBody),
      headers: { Authorization: 'Bearer ' + keys.inv, 'Content-Type': 'application/json' },
    });
    const refusal = await unchosen.json();
    assert.equal(refusal.code, 'FAILED_PRECONDITION', JSON.stringify(refusal));
    const boxes = [...refusal.message.matchAll(/(\d+): \d+x\d+ at \((\d+),\d+\)/g)]
      .map((m) => ({ index: Number(m[1]), x: Number(m[2]) }));
    assert.equal(boxes.length, 3, refusal.message);
    const right = boxes.reduce((a, b) => (b.x > a.x ? b : a));
    const added = await api(base, keys.inv, 'POST', `/v1/cases/${created.id}/photos`,
      { ...photoBody, faceIndex: right.index, hasFaceIndex: true });
    assert.equal(added.faces.filter((f) => f.stored).length, 1);
    // Another MISSING child, 15 in a dated photo: below the lead threshold for PHOTO, and too
    // old to be the 6-9-year-old seen in 2024.
    const other = await api(base, keys.inv, 'POST', '/v1/cases', {
      kind: 'MISSING', displayName: 'Other Child', place: 'Shelbyville', eventDate: '2023-07-01',
    });
    const otherAdded = await api(base, keys.inv, 'POST', `/v1/cases/${other.id}/photos`, {
      image: fs.readFileSync(OTHER_PHOTO).toString('base64'), takenOn: '2023-06-01',
      age: { minYears: 15, maxYears: 15, known: true }, faceIndex: 0, hasFaceIndex: true,
    });
    assert.equal(otherAdded.faces.filter((f) => f.stored).length, 1);

    // Only investigators and admins may ask for the age-inconsistent candidates.
    const denied = await fetch(base + '/v1/sightings', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + keys.vol, 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: jpeg.toString('base64'), includeAgeInconsistent: true }),
    });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).code, 'PERMISSION_DENIED');

    // The page itself carries the security headers.
    const home = await fetch(base + '/');
    assert.match(home.headers.get('content-security-policy'), /script-src 'self'/);
    assert.equal(home.headers.get('x-frame-options'), 'DENY');

    context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 390, height: 844 },  // a phone
    });
    const page = context.pages()[0] || await context.newPage();
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));

    // Volunteer: phone-sized, keyboard sign-in, upload, faces with verdicts and a candidate.
    await signIn(page, base, keys.vol);
    const file = page.getByLabel('Photo of the child');
    assert.equal(await file.getAttribute('capture'), 'environment');
    await file.setInputFiles(PHOTO);
    await page.getByLabel('Where').fill('Main Street, Springfield');
    await page.getByLabel('When').fill('2024-04-02');
    await page.getByLabel('From', { exact: true }).fill('6');
    await page.getByLabel('To', { exact: true }).fill('9');
    await page.getByRole('button', { name: 'Send sighting' }).click();
    const face = page.getByRole('article', { name: 'Face 1' });
    await face.waitFor({ timeout: 120000 });
    await face.getByText('Good face photo').waitFor();
    await face.getByText(`Case ${created.id}`).waitFor();
    assert.equal(await face.getByText('Test Child').count(), 0, 'volunteers see case ids only');
    assert.equal(await face.getByText(`Case ${other.id}`).count(), 0, 'no stranger is listed');
    // Crops arrive through fetch + blob: URLs.
    await page.waitForFunction(() => [...document.querySelectorAll('#sighting-results img')]
      .every((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0));
    await page.screenshot({ path: path.join(OUT, 'volunteer-sighting.png'), fullPage: true });

    // Children that no registered case resembles: for each face the plain sentence, and no
    // candidate rows (Test Child is a candidate below the lead threshold, never shown to a
    // volunteer; Other Child is too old).
    const results = page.locator('#sighting-results');
    const firstHeading = await results.locator('h3').textContent();
    await file.setInputFiles(STRANGER_PHOTO);
    await page.getByLabel('When').fill('2024-04-03');
    await page.getByRole('button', { name: 'Send sighting' }).click();
    // The first sighting's faces stay on the page until the reply replaces them.
    await page.waitForFunction((h) => {
      const e = document.querySelector('#sighting-results h3');
      return e && e.textContent !== h;
    }, firstHeading, { timeout: 120000 });
    const noMatch = results.getByText(
      /^No likely match yet: an investigator will review your sighting/);
    await noMatch.first().waitFor({ timeout: 120000 });
    const faces = await results.getByRole('article').count();
    assert.ok(faces >= 1, 'the faces are shown');
    // A face found but not stored (too small or blurred to search) shows why instead.
    const notStored = results.locator('article.not-stored');
    assert.equal(await noMatch.count(), faces - await notStored.count(),
      'each stored face says so: ' + JSON.stringify(await results.getByRole('article').allTextContents()));
    for (const a of await notStored.all()) {
      assert.equal(await a.locator('.verdict.bad').count(), 1, 'a face not stored says why');
    }
    assert.equal(await results.locator('.candidate').count(), 0, 'no candidate rows');
    assert.equal(await results.getByText(/similarity/).count(), 0, 'no similarity shown');
    assert.equal(await results.getByText(/^Case \d+$/).count(), 0, 'no case listed');
    await page.screenshot({ path: path.join(OUT, 'volunteer-no-match.png'), fullPage: true });

    // Investigator: the sighting made a lead; open it, confirm it for DNA with a note.
    const leads = await api(base, keys.inv, 'GET', '/v1/leads');
    assert.ok((leads.leads || []).length >= 1, 'the sighting made no lead: ' + JSON.stringify(leads));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, base, keys.inv);
    await page.getByRole('button', { name: 'Investigate' }).click();
    const open = page.getByRole('button', { name: /^Open lead \d+$/ }).first();
    await open.waitFor({ timeout: 90000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#lead-list img')]
      .every((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0));
    await page.screenshot({ path: path.join(OUT, 'investigator-leads.png'), fullPage: true });
    const leadId = (await open.textContent()).match(/\d+/)[0];
    await open.click();
    const lead = page.getByRole('region', { name: `Lead ${leadId}` });
    await lead.waitFor();
    await lead.getByText('Awaiting review', { exact: true }).waitFor();
    await lead.getByText('Age gap', { exact: true }).waitFor();
    await lead.getByText(/Main Street, Springfield/).first().waitFor();
    assert.ok(await page.locator('#lead-caveats li').count() >= 1, 'caveats are listed');
    await page.waitForFunction(() =>
      document.getElementById('lead-a-crop').naturalWidth === 200 &&
      document.getElementById('lead-b-crop').naturalWidth === 200 &&
      document.getElementById('lead-a-photo').naturalWidth > 0 &&
      document.getElementById('lead-b-photo').naturalWidth > 0);
    await page.getByLabel('Note', { exact: true }).fill('Same child; request DNA kit from the family.');
    await page.getByRole('button', { name: 'Confirm for DNA test' }).click();
    await lead.getByText('Confirmed for a DNA test', { exact: true }).waitFor();
    await lead.getByText(/Confirmed for a DNA test by inv/).waitFor();
    await page.waitForFunction(() => ['lead-a-crop', 'lead-b-crop', 'lead-a-photo', 'lead-b-photo']
      .every((id) => document.getElementById(id).complete &&
        document.getElementById(id).naturalWidth > 0));
    await page.screenshot({ path: path.join(OUT, 'investigator-lead-confirmed.png'),
      fullPage: true });
    // The review is on record, by the investigator's key, through the API.
    const recorded = await api(base, keys.inv, 'GET', `/v1/leads/${leadId}`);
    assert.equal(recorded.status, 'LEAD_CONFIRMED_FOR_DNA');
    assert.equal(recorded.reviews.length, 1);
    assert.equal(recorded.reviews[0].reviewer, 'inv');
    assert.equal(recorded.reviews[0].decision, 'LEAD_CONFIRMED_FOR_DNA');
    assert.match(recorded.reviews[0].note, /DNA kit/);

    // Search by photo: ranked candidates and the side-by-side review.
    await page.getByLabel('Photo', { exact: true }).setInputFiles(PHOTO);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('list', { name: 'Ranked candidates' }).first().waitFor({ timeout: 120000 });
    // sample2 shows three faces, each with its own list; the child's is the face whose likely
    // match is Test Child.
    const queryFace = page.getByRole('article', { name: /^Query face \d+$/ })
      .filter({ hasText: /Test Child[^]*lead threshold reached/ });
    assert.equal(await queryFace.count(), 1, 'one query face is the registered child');
    const ranked = queryFace.getByRole('list', { name: 'Ranked candidates' });
    await ranked.getByText('Test Child').first().waitFor();
    // The lead threshold is marked: the likely match above it, a divider, the other child.
    await queryFace.getByText(/^Lead threshold: confidence 50%/).waitFor();
    const rows = await ranked.locator(':scope > li').allTextContents();
    const at = (re) => rows.findIndex((t) => re.test(t));
    assert.ok(at(/^Below the lead threshold/) > at(/Test Child/) && at(/Test Child/) >= 0,
      'the divider follows the likely match: ' + JSON.stringify(rows));
    assert.ok(at(/Other Child/) > at(/^Below the lead threshold/),
      'the other child is below the divider: ' + JSON.stringify(rows));
    assert.match(rows[at(/Test Child/)], /lead threshold reached/);
    assert.doesNotMatch(rows[at(/Other Child/)], /lead threshold reached/);
    await page.screenshot({ path: path.join(OUT, 'investigator-search.png'), fullPage: true });
    const firstReview = ranked.getByRole('button', { name: 'Review' }).first();
    await firstReview.focus();
    await page.keyboard.press('Enter');
    const review = page.getByRole('region', { name: 'Candidate review' });
    await review.waitFor();
    await review.getByText('Confidence', { exact: true }).waitFor();
    await review.getByText('Age gap', { exact: true }).waitFor();
    assert.ok(await page.locator('#review-caveats li').count() >= 1, 'caveats are listed');
    await page.waitForFunction(() => {
      const a = document.getElementById('review-query-crop');
      const b = document.getElementById('review-candidate-crop');
      return a.naturalWidth === 200 && b.naturalWidth === 200;  // same size crops
    });
    await page.waitForFunction(() => document.getElementById('review-candidate-photo')
      .naturalWidth > 0);
    await page.screenshot({ path: path.join(OUT, 'investigator-review.png'), fullPage: true });

    // With the child's age and the photo date, the other child (15 in 2023) is left out and
    // counted; on request it comes back with an "age-inconsistent" badge and its age then.
    await page.getByLabel('Photo taken on').fill('2024-04-02');
    await page.getByLabel('Age from', { exact: true }).fill('6');
    await page.getByLabel('Age to', { exact: true }).fill('9');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const leftOut = queryFace.getByRole('list', { name: 'Left out for age' });
    await leftOut.waitFor({ timeout: 120000 });
    assert.ok(await leftOut.locator('li').count() >= 1, 'a reason to leave out is given');
    await ranked.getByText('Test Child').first().waitFor();
    assert.equal(await ranked.getByText('Other Child').count(), 0, 'left out for its age');
    await page.screenshot({ path: path.join(OUT, 'investigator-age-left-out.png'),
      fullPage: true });
    await page.getByLabel('Include age-inconsistent candidates').check();
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const inconsistent = ranked.locator('li', { hasText: 'Other Child' });
    await inconsistent.getByText('age-inconsistent', { exact: true }).waitFor({ timeout: 120000 });
    assert.match(await inconsistent.textContent(), /age at the query date 1[5-7]/);
    await page.screenshot({ path: path.join(OUT, 'investigator-age-inconsistent.png'),
      fullPage: true });

    // The photo bytes were fetched with the key and never cached.
    const photo = await fetch(`${base}/v1/photos/${added.photoId}`,
      { headers: { Authorization: 'Bearer ' + keys.inv } });
    assert.equal(photo.headers.get('cache-control'), 'no-store');
    const csp = problems.filter((p) => /Content Security Policy/i.test(p));
    assert.deepEqual(csp, [], 'no CSP violations');
    assert.deepEqual(problems.filter((p) => !/Failed to load resource/.test(p)), [],
      'no page errors');
    console.log(`PASS web_browser_test; screenshots in ${OUT}`);
  } finally {
    if (context) await context.close();
    server.proc.kill('SIGTERM');
    await new Promise((r) => server.proc.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('FAIL web_browser_test:', e);
  process.exit(1);
});
