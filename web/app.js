// Homeward web pages: sign-in, volunteer sightings, investigator search and review.
// Talks to the JSON gateway (docs/WEB.md) with the key from sessionStorage; images are
// fetched with the key and shown as blob: URLs, never cached. No inline script (CSP).
'use strict';

(function () {
  const KEY = 'homeward.apiKey';
  const $ = (id) => document.getElementById(id);
  let blobUrls = [];
  let lastQueryFile = null;

  // ---- API -------------------------------------------------------------------------------
  function apiKey() { return sessionStorage.getItem(KEY) || ''; }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + apiKey() };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
    const type = res.headers.get('Content-Type') || '';
    const data = type.startsWith('application/json') ? await res.json() : null;
    if (!res.ok) {
      const err = new Error((data && data.message) || ('HTTP ' + res.status));
      err.status = res.status;
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  // An image from the API as a blob: URL (revoked when the view is cleared).
  async function imageUrl(path) {
    const res = await fetch(path, {
      headers: { Authorization: 'Bearer ' + apiKey() }, cache: 'no-store',
    });
    if (!res.ok) throw new Error('image ' + res.status);
    const url = URL.createObjectURL(await res.blob());
    blobUrls.push(url);
    return url;
  }

  function setImage(img, path) {
    img.removeAttribute('src');
    imageUrl(path).then((u) => { img.src = u; }).catch(() => { img.alt += ' (not available)'; });
  }

  function clearBlobs() {
    blobUrls.forEach((u) => URL.revokeObjectURL(u));
    blobUrls = [];
  }

  // ---- Small DOM helpers -----------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function status(text, isError) {
    const s = $('status');
    s.textContent = text;
    s.className = 'status' + (isError ? ' error' : '');
  }

  function ageText(age) {
    if (!age || !age.known) return 'unknown';
    const min = Math.round(age.minYears * 10) / 10;
    const max = Math.round(age.maxYears * 10) / 10;
    const span = min === max ? `${min} years` : `${min}–${max} years`;
    return (age.estimated ? 'about ' : '') + span +
      (age.fromFace ? ' (estimated from the face)' : '');
  }

  function gapText(gap) {
    if (!gap || !gap.known) return 'unknown';
    const min = Math.round(gap.minYears * 10) / 10;
    const max = Math.round(gap.maxYears * 10) / 10;
    return (min === max ? `${min} years` : `${min}–${max} years`) +
      (gap.estimated ? ' (from an estimated age)' : '');
  }

  function percent(x) { return Math.round((x || 0) * 100) + '%'; }

  function caveatList(caveats) {
    const ul = el('ul', { class: 'caveats' });
    for (const c of caveats || []) ul.append(el('li', {}, c.message || c.code));
    return ul;
  }

  function verdict(face) {
    const q = face.quality || {};
    if (q.usable) return el('p', { class: 'verdict good' }, 'Good face photo');
    if (q.nonFrontal && face.stored) {
      return el('p', { class: 'verdict bad' }, 'Turned face: kept as evidence and searched, ' +
        'but a match is less certain; a photo from the front would help');
    }
    return el('p', { class: 'verdict bad' }, q.reason || face.notStoredReason ||
      'This face cannot be used: retake closer, in good light');
  }

  // ---- Views -----------------------------------------------------------------------------
  function show(view) {
    for (const v of ['signin', 'volunteer', 'investigator']) {
      $('view-' + v).hidden = v !== view;
    }
    $('nav').hidden = view === 'signin';
    for (const b of document.querySelectorAll('nav [data-view]')) {
      b.setAttribute('aria-pressed', String(b.dataset.view === view));
    }
    const heading = $('view-' + view).querySelector('h2');
    if (heading) { heading.tabIndex = -1; heading.focus(); }
    if (view === 'investigator' && !leads.length && $('lead-list').hidden) loadLeads();
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $('api-key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    try {
      await api('GET', '/v1/stats');
      $('api-key').value = '';
      status('Signed in.');
      show('volunteer');
    } catch (e) {
      sessionStorage.removeItem(KEY);
      status(e.status === 401
        ? 'That key was not accepted: this server checks API keys (it is not a development ' +
          'server), so ask your administrator for one.'
        : 'Cannot sign in: ' + e.message, true);
      $('api-key').focus();
    }
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    clearBlobs();
    $('sighting-results').textContent = '';
    $('search-results').textContent = '';
    for (const p of PANELS) $(p).hidden = true;
    $('lead-list').textContent = '';
    status('Signed out.');
    show('signin');
    $('api-key').focus();
  }

  // ---- Volunteer: submit a sighting ------------------------------------------------------
  async function submitSighting(event) {
    event.preventDefault();
    const file = $('sighting-photo').files[0];
    if (!file) { status('Choose or take a photo first.', true); return; }
    const form = new FormData();
    form.append('image', file);
    if ($('sighting-date').value) form.append('seenOn', $('sighting-date').value);
    form.append('place', $('sighting-place').value);
    form.append('notes', $('sighting-notes').value);
    const min = $('sighting-age-min').value, max = $('sighting-age-max').value;
    if (min !== '' || max !== '') {
      const lo = Number(min !== '' ? min : max), hi = Number(max !== '' ? max : min);
      form.append('estimatedAge', JSON.stringify(
        { minYears: Math.min(lo, hi), maxYears: Math.max(lo, hi), estimated: true, known: true }));
    }
    form.append('topK', '5');
    const button = $('sighting-submit');
    button.disabled = true;
    status('Sending the photo…');
    try {
      const r = await api('POST', '/v1/sightings', form);
      renderSighting(r);
      status(r.caseId ? `Sighting ${r.caseId} saved. Thank you.`
                      : 'No face was found, so nothing was saved: retake the photo.', !r.caseId);
    } catch (e) {
      status('The sighting was not saved: ' + e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  const NO_MATCH = 'No likely match yet: an investigator will review your sighting, and new ' +
    'cases are compared with it as they arrive. Thank you.';

  function renderSighting(r) {
    clearBlobs();
    const out = $('sighting-results');
    out.textContent = '';
    out.append(el('h3', {}, r.caseId ? `Sighting ${r.caseId}: ${r.results.length} face(s) found`
                                     : 'No face found'));
    if (r.noFaceReason) out.append(el('p', { class: 'verdict bad' }, r.noFaceReason));
    // Sent without an age: the server's estimate from the face, if it made one.
    if (r.age && r.age.known && r.age.fromFace) {
      out.append(el('p', {}, `Age: ${ageText(r.age)}`));
    }
    r.results.forEach((res, i) => {
      const face = res.queryFace || {};
      const box = el('article', { class: face.stored ? 'face' : 'face not-stored',
        'aria-label': `Face ${i + 1}` });
      const img = el('img', { alt: `Face ${i + 1}`, width: 96, height: 96 });
      if (face.faceId) setImage(img, `/v1/faces/${face.faceId}/crop?size=150`);
      const info = el('div', { class: 'meta' }, el('h4', {}, `Face ${i + 1}`), verdict(face));
      if (face.faceId) box.append(img);
      box.append(info);
      out.append(box);
      // Likely matches only (at or above the lead threshold: all a volunteer is sent; other
      // roles' lists are cut here too). Without one, the plain sentence, never strangers.
      const candidates = (res.candidates || []).filter((c) => c.aboveLeadThreshold);
      if (!candidates.length) {
        // The server's sentence, unless it speaks of a list this page does not show (replies
        // to other roles keep the nearest faces).
        const own = (res.candidates || []).length ? '' : res.message;
        if (face.stored) info.append(el('p', { class: 'no-match' }, own || NO_MATCH));
        return;
      }
      info.append(el('p', {}, 'Likely matches (an investigator will review them):'));
      const list = el('ul', { class: 'candidates', 'aria-label': 'Likely matches' });
      for (const c of candidates) {
        const cimg = el('img', { alt: `Candidate case ${c.case.id}`, width: 96, height: 96 });
        setImage(cimg, `/v1/faces/${c.faceId}/crop?size=150`);
        list.append(el('li', { class: 'candidate' }, cimg, el('div', { class: 'meta' },
          el('strong', {}, `Case ${c.case.id}`), ` (${c.case.kind.toLowerCase()}) — `,
          `similarity ${percent(c.confidence)}`, caveatList(c.caveats))));
      }
      box.append(list);
    });
    out.append(caveatList(r.caveats));
    out.focus();
  }

  // ---- Investigator: one output panel at a time ------------------------------------------
  const PANELS = ['lead-list', 'lead', 'search-results', 'review'];
  function showPanel(id) {
    for (const p of PANELS) $(p).hidden = p !== id;
    $(id).focus();
  }

  const STATUS_WORDS = {
    LEAD_OPEN: 'Awaiting review',
    LEAD_CONFIRMED_FOR_DNA: 'Confirmed for a DNA test',
    LEAD_REJECTED: 'Rejected: not the same child',
    LEAD_NEEDS_BETTER_PHOTO: 'Needs a better photo',
  };

  function sideText(side) {
    const c = side.case || {};
    return `${c.displayName || 'Case ' + c.id} (${(c.kind || '').toLowerCase()} case ${c.id})`;
  }

  // ---- Investigator: lead queue and lead page --------------------------------------------
  let leads = [];

  async function loadLeads(event) {
    if (event) event.preventDefault();
    const q = new URLSearchParams();
    if ($('leads-status').value) q.set('status', $('leads-status').value);
    if ($('leads-region').value) q.set('placeContains', $('leads-region').value);
    if ($('leads-from').value) q.set('eventFrom', $('leads-from').value);
    if ($('leads-to').value) q.set('eventTo', $('leads-to').value);
    q.set('pageSize', '200');
    status('Loading leads…');
    try {
      const r = await api('GET', '/v1/leads?' + q.toString());
      leads = r.leads || [];
      renderLeads();
      status(`${leads.length} lead(s).`);
    } catch (e) {
      status('Cannot load leads: ' + e.message, true);
    }
  }

  function renderLeads() {
    clearBlobs();
    const by = $('leads-sort').value;
    const list = leads.slice();
    if (by === 'confidence-asc') list.sort((a, b) => a.confidence - b.confidence);
    else if (by === 'newest') list.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    else list.sort((a, b) => b.confidence - a.confidence);
    const out = $('lead-list');
    out.textContent = '';
    out.append(el('h3', {}, `Leads (${list.length})`));
    if (!list.length) {
      out.append(el('p', {}, 'No leads match these filters.'));
      showPanel('lead-list');
      return;
    }
    const body = el('tbody');
    for (const lead of list) {
      const imgA = el('img', { alt: 'Face of ' + sideText(lead.a), width: 56, height: 56 });
      const imgB = el('img', { alt: 'Face of ' + sideText(lead.b), width: 56, height: 56 });
      setImage(imgA, `/v1/faces/${lead.a.faceId}/crop?size=112`);
      setImage(imgB, `/v1/faces/${lead.b.faceId}/crop?size=112`);
      const open = el('button', { type: 'button' }, `Open lead ${lead.id}`);
      open.addEventListener('click', () => openLead(lead.id));
      body.append(el('tr', {},
        el('td', {}, imgA, ' ', imgB),
        el('td', {}, sideText(lead.a), el('br'), sideText(lead.b)),
        el('td', {}, percent(lead.confidence)),
        el('td', {}, STATUS_WORDS[lead.status] || lead.status),
        el('td', {}, open)));
    }
    out.append(el('table', { class: 'leads' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Faces'),
        el('th', { scope: 'col' }, 'Cases'), el('th', { scope: 'col' }, 'Confidence'),
        el('th', { scope: 'col' }, 'Status'), el('th', { scope: 'col' }, 'Action'))),
      body));
    showPanel('lead-list');
  }

  let currentLead = null;

  async function openLead(id) {
    status(`Opening lead ${id}…`);
    try {
      currentLead = await api('GET', `/v1/leads/${id}`);
      renderLead();
      status('');
    } catch (e) {
      status('Cannot open the lead: ' + e.message, true);
    }
  }

  function renderLead() {
    const lead = currentLead;
    clearBlobs();
    $('lead-title').textContent = `Lead ${lead.id}`;
    $('lead-status').textContent = STATUS_WORDS[lead.status] || lead.status;
    for (const [k, side] of [['a', lead.a], ['b', lead.b]]) {
      setImage($(`lead-${k}-crop`), `/v1/faces/${side.faceId}/crop?size=200`);
      $(`lead-${k}-crop`).alt = 'Face of ' + sideText(side);
      $(`lead-${k}-caption`).textContent = sideText(side);
      const photo = $(`lead-${k}-photo`);
      photo.alt = 'Photo of ' + sideText(side);
      if (side.photoId) setImage(photo, `/v1/photos/${side.photoId}`);
      else photo.removeAttribute('src');
    }
    const facts = $('lead-facts');
    facts.textContent = '';
    const add = (k, v) => facts.append(el('dt', {}, k), el('dd', {}, v));
    add('Confidence', percent(lead.confidence) + ` (distance ${lead.distance.toFixed(3)})`);
    for (const side of [lead.a, lead.b]) {
      const c = side.case || {};
      add(`Case ${c.id}`, `${(c.kind || '').toLowerCase()}` +
        (c.place ? `, ${c.place}` : ', place unknown') +
        (c.eventDate ? `, ${c.eventDate}` : '') +
        ` · photo taken ${side.takenOn || 'on an unknown date'}` +
        ` · age at photo ${ageText(side.age)}`);
    }
    add('Age gap', gapText(lead.ageGap));
    if (lead.sightingClusterCaseIds && lead.sightingClusterCaseIds.length) {
      add('Also seen in sightings', lead.sightingClusterCaseIds.join(', '));
    }
    const cav = $('lead-caveats');
    cav.textContent = '';
    for (const x of lead.caveats || []) cav.append(el('li', {}, x.message || x.code));
    const reviews = $('lead-reviews');
    reviews.textContent = '';
    for (const r of lead.reviews || []) {
      reviews.append(el('li', {}, `${STATUS_WORDS[r.decision] || r.decision} by ${r.reviewer}` +
        ` at ${r.reviewedAt}` + (r.note ? `: ${r.note}` : '')));
    }
    if (!(lead.reviews || []).length) reviews.append(el('li', {}, 'Not reviewed yet.'));
    showPanel('lead');
  }

  async function reviewLead(event) {
    event.preventDefault();
    const decision = event.submitter && event.submitter.dataset.decision;
    if (!decision || !currentLead) return;
    for (const b of document.querySelectorAll('#lead-review-form button')) b.disabled = true;
    try {
      currentLead = await api('POST', `/v1/leads/${currentLead.id}:review`,
        { decision, note: $('lead-note').value });
      $('lead-note').value = '';
      renderLead();
      status(`Lead ${currentLead.id}: ${STATUS_WORDS[currentLead.status]}.`);
    } catch (e) {
      status('The review was not saved: ' + e.message, true);
    } finally {
      for (const b of document.querySelectorAll('#lead-review-form button')) b.disabled = false;
    }
  }

  // ---- Investigator: search by photo, review a candidate ---------------------------------
  let lastSearch = null;

  async function submitSearch(event) {
    event.preventDefault();
    const file = $('search-photo').files[0];
    if (!file) { status('Choose a photo first.', true); return; }
    lastQueryFile = file;
    const form = new FormData();
    form.append('image', file);
    form.append('topK', $('search-topk').value || '10');
    if ($('search-date').value) form.append('queryDate', $('search-date').value);
    const min = $('search-age-min').value, max = $('search-age-max').value;
    if (min !== '' || max !== '') {
      // One number is the child's age in whole years; a range is an estimate.
      const lo = Number(min !== '' ? min : max), hi = Number(max !== '' ? max : min);
      form.append('queryAge', JSON.stringify({ minYears: Math.min(lo, hi),
        maxYears: Math.max(lo, hi), estimated: lo !== hi, known: true }));
    }
    if ($('search-inconsistent').checked) form.append('includeAgeInconsistent', 'true');
    const button = $('search-submit');
    button.disabled = true;
    status('Searching…');
    try {
      lastSearch = await api('POST', '/v1/search', form);
      renderSearch();
      status('Search done.');
    } catch (e) {
      status('Search failed: ' + e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function sorted(candidates) {
    const by = $('search-sort').value;
    const list = candidates.slice();
    if (by === 'distance') list.sort((a, b) => a.distance - b.distance);
    else if (by === 'date') list.sort((a, b) => (b.takenOn || '').localeCompare(a.takenOn || ''));
    else list.sort((a, b) => b.confidence - a.confidence);
    return list;
  }

  // One ranked candidate of the investigator's list, with its badges.
  function candidateItem(res, c, markBelow) {
    const img = el('img', { alt: `Candidate ${c.case.displayName || c.case.id}`,
      width: 96, height: 96 });
    setImage(img, `/v1/faces/${c.faceId}/crop?size=150`);
    const open = el('button', { type: 'button' }, 'Review');
    open.addEventListener('click', () => openReview(res, c));
    const badges = el('p', { class: 'badges' });
    if (c.aboveLeadThreshold) {
      badges.append(el('span', { class: 'badge lead' }, 'lead threshold reached'));
    } else if (markBelow) {
      badges.append(el('span', { class: 'badge' }, 'below the lead threshold'));
    }
    if (c.ageConsistent === false) {
      badges.append(el('span', { class: 'badge bad' }, 'age-inconsistent'));
    }
    if (c.caseFacesMatched > 1) {
      badges.append(el('span', { class: 'badge' },
        `best of ${c.caseFacesMatched} faces of this case`));
    }
    const projected = c.projectedAge && c.projectedAge.known
      ? ` · age at the query date ${ageText(c.projectedAge)}` : '';
    return el('li', { class: 'candidate' + (c.aboveLeadThreshold ? '' : ' below') }, img,
      el('div', { class: 'meta' },
        el('strong', {}, c.case.displayName || `Case ${c.case.id}`),
        ` — case ${c.case.id}, ${c.case.kind.toLowerCase()}`, el('br'),
        `Confidence ${percent(c.confidence)} · age gap ${gapText(c.ageGap)}${projected}`,
        badges.childNodes.length ? badges : null,
        caveatList(c.caveats)), open);
  }

  function renderSearch() {
    if (!lastSearch) return;
    clearBlobs();
    const out = $('search-results');
    out.textContent = '';
    const r = lastSearch;
    out.append(el('h3', {}, `${r.results.length} face(s) in the photo`));
    if (r.noFaceReason) out.append(el('p', { class: 'verdict bad' }, r.noFaceReason));
    // Sent without an age: the server's estimate from the face, if it made one.
    if (r.age && r.age.known && r.age.fromFace) {
      out.append(el('p', {}, `Age: ${ageText(r.age)}`));
    }
    const byConfidence = $('search-sort').value === 'confidence';
    r.results.forEach((res, i) => {
      const box = el('article', { class: 'face', 'aria-label': `Query face ${i + 1}` },
        el('div', { class: 'meta' }, el('h4', {}, `Face ${i + 1}`), verdict(res.queryFace)));
      const threshold = percent(res.leadThreshold);
      box.append(el('p', { class: 'threshold-note' }, `Lead threshold: confidence ${threshold}` +
        (res.credibleMatch ? '; at least one candidate reaches it.' : '.')));
      if (res.message) box.append(el('p', { class: 'no-match', role: 'note' }, res.message));
      if ((res.ageLeftOut || []).length) {
        const left = el('ul', { class: 'left-out', 'aria-label': 'Left out for age' });
        for (const l of res.ageLeftOut) {
          left.append(el('li', {}, l.message || `${l.count} case(s) left out: ${l.reason}`));
        }
        box.append(left);
      }
      const candidates = res.candidates || [];
      const list = el('ol', { class: 'candidates', 'aria-label': 'Ranked candidates' });
      let dividerShown = false;
      sorted(candidates).forEach((c) => {
        // Sorted by confidence, one divider marks where the likely matches end.
        if (byConfidence && !c.aboveLeadThreshold && !dividerShown) {
          dividerShown = true;
          list.append(el('li', { class: 'threshold' }, `Below the lead threshold (confidence ` +
            `${threshold}): the nearest faces, not likely matches`));
        }
        list.append(candidateItem(res, c, !byConfidence));
      });
      if (!candidates.length) list.append(el('li', {}, 'No candidates.'));
      box.append(list);
      out.append(box);
    });
    out.append(caveatList(r.caveats));
    showPanel('search-results');
  }

  // The searched photo is not stored: cut its face out locally, at the crops' size.
  function cropLocal(img, file, box, size) {
    const src = URL.createObjectURL(file);
    blobUrls.push(src);
    const photo = new Image();
    photo.onload = () => {
      const pad = 0.25 * Math.max(box.width, box.height);
      const side = Math.max(box.width, box.height) + 2 * pad;
      const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
      const canvas = document.createElement('canvas');
      canvas.width = size;
      canvas.height = size;
      canvas.getContext('2d').drawImage(photo, cx - side / 2, cy - side / 2, side, side,
        0, 0, size, size);
      canvas.toBlob((blob) => {
        const u = URL.createObjectURL(blob);
        blobUrls.push(u);
        img.src = u;
      }, 'image/png');
    };
    photo.src = src;
  }

  function openReview(res, c) {
    const q = res.queryFace || {};
    const qCrop = $('review-query-crop');
    if (q.faceId) setImage(qCrop, `/v1/faces/${q.faceId}/crop?size=200`);
    else if (lastQueryFile && q.box) cropLocal(qCrop, lastQueryFile, q.box, 200);
    else qCrop.removeAttribute('src');
    setImage($('review-candidate-crop'), `/v1/faces/${c.faceId}/crop?size=200`);
    $('review-candidate-caption').textContent =
      `${c.case.displayName || 'Case ' + c.case.id} (case ${c.case.id})`;
    const facts = $('review-facts');
    facts.textContent = '';
    const add = (k, v) => facts.append(el('dt', {}, k), el('dd', {}, v));
    add('Confidence', percent(c.confidence));
    add('Similarity score', `${percent(c.score)} (distance ${c.distance.toFixed(3)})`);
    add('Lead threshold', `confidence ${percent(res.leadThreshold)}: ` +
      (c.aboveLeadThreshold ? 'reached' : 'not reached'));
    add('Age in candidate photo', ageText(c.candidateAge));
    if (c.projectedAge && c.projectedAge.known) {
      add('Age at the query date', ageText(c.projectedAge));
    }
    add('Age consistency', c.ageConsistent === false
      ? 'age-inconsistent: check both records\' dates and ages' : 'consistent or unknown');
    add('Age gap', gapText(c.ageGap));
    if (c.caseFacesMatched > 1) {
      add('Faces of this case', `best of ${c.caseFacesMatched} among the nearest`);
    }
    add('Candidate photo taken', c.takenOn || 'unknown');
    add('Case', `${c.case.kind.toLowerCase()}, ${c.case.status.toLowerCase()}` +
      (c.case.place ? `, ${c.case.place}` : '') +
      (c.case.eventDate ? ` on ${c.case.eventDate}` : ''));
    const cav = $('review-caveats');
    cav.textContent = '';
    const seen = new Set();
    for (const x of (c.caveats || []).concat(lastSearch.caveats || [])) {
      const text = x.message || x.code;
      if (!seen.has(text)) cav.append(el('li', {}, text));
      seen.add(text);
    }
    // The two photos side by side: the searched file (local) and the stored candidate photo.
    if (lastQueryFile) {
      const u = URL.createObjectURL(lastQueryFile);
      blobUrls.push(u);
      $('review-query-photo').src = u;
    }
    if (c.photoId) setImage($('review-candidate-photo'), `/v1/photos/${c.photoId}`);
    showPanel('review');
  }

  function closeReview() { showPanel('search-results'); }

  // ---- Wiring ----------------------------------------------------------------------------
  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    for (const b of document.querySelectorAll('nav [data-view]')) {
      b.addEventListener('click', () => show(b.dataset.view));
    }
    $('sighting-form').addEventListener('submit', submitSighting);
    $('search-form').addEventListener('submit', submitSearch);
    $('search-sort').addEventListener('change', renderSearch);
    $('review-close').addEventListener('click', closeReview);
    $('leads-form').addEventListener('submit', loadLeads);
    $('leads-sort').addEventListener('change', renderLeads);
    $('lead-review-form').addEventListener('submit', reviewLead);
    $('lead-close').addEventListener('click', () => showPanel('lead-list'));
    show(apiKey() ? 'volunteer' : 'signin');
  });
})();
