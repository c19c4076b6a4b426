// ArtiStyle studio: the page's logic. No libraries, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["queued", "running", "cancelling"];
const STORED_JOB = "artistyle.job";  // localStorage: the job this browser last started or watched

const state = {
  limits: null,
  defaults: null,
  fast: null,             // {available, message, schedule}: the fast start on this server
  fields: [],             // [{setting, control}]: the More settings rows built from /api/status
  samples: [],
  content: null,          // {id, name, url, width, height}
  styles: [],             // [{id, name, url, weight, scale}]
  fineStyle: null,        // {id, name, url}: its fine brush texture replaces the styles' own
  masks: [],              // [{id, name, url}]: one label image or one mask per style
  job: null,              // id of the job this tab follows
  jobContent: null,       // URL of that job's photo, for the before/after view
  events: null,           // its EventSource
  losses: [],
  steps: 0,
  shownPreview: 0,
  milestone: "",          // the last thing announced to screen readers
  scheduleTimer: 0,
};

// ---------------------------------------------------------------- helpers

function megabytes(bytes) {
  return `${Number((bytes / 1e6).toPrecision(3))} MB`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, url, body, headers) {
  let response;
  // The studio refuses a POST without this header: a page on another site cannot send it without asking first.
  const sent = method === "GET" ? headers : { ...headers, "X-ArtiStyle": "1" };
  try {
    response = await fetch(url, { method, body, headers: sent });
  } catch (err) {
    throw new Error("the studio is not answering; is `artistyle web` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function formatLoss(value) {
  return value == null ? "-" : value.toExponential(3);
}

function formatWeight(log10) {
  const value = Math.pow(10, log10);
  return Number(value.toPrecision(2)).toExponential().replace("e+", "e").replace(".0e", "e");
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function imageUrl(id) {
  return `/api/images/${encodeURIComponent(id)}`;
}

function jobUrl(id, what) {
  return `/api/jobs/${encodeURIComponent(id)}${what ? `/${what}` : ""}`;
}

function sampleLabel(name) {
  return name.replace(/\.[a-z]+$/i, "").replace(/_/g, " ");
}

// Only milestones reach screen readers (start, each scale, the end), never every iteration.
function announce(key, text) {
  if (key === state.milestone) return;
  state.milestone = key;
  $("announce").textContent = text;
}

// ---------------------------------------------------------------- images

async function upload(file) {
  // Checked here first so a huge file is not sent only to be refused; the server checks again.
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    throw new Error(`image '${file.name}' is ${megabytes(file.size)}, over the studio's limit of ` +
      `${megabytes(state.limits.max_upload_bytes)} per image (artistyle web --max-upload-mb)`);
  }
  const info = await api("POST", "/api/images", file, {
    "Content-Type": file.type || "application/octet-stream",
    "X-Filename": encodeURIComponent(file.name),
  });
  return { id: info.id, name: info.name, url: URL.createObjectURL(file), width: info.width, height: info.height };
}

function fromServer(info) {
  return info && { id: info.id, name: info.name, width: info.width, height: info.height, url: imageUrl(info.id) };
}

function setContent(image) {
  state.content = image;
  const thumb = $("content-thumb");
  thumb.src = image.url;
  // The drop zone's name (a button's name comes from its content): the photo, and what a press does.
  thumb.alt = `Photo: ${image.name}, ${image.width}x${image.height}; choose another (or drop one here)`;
  thumb.hidden = false;
  $("content-hint").hidden = true;
  $("content-name").textContent = `${image.name} (${image.width}x${image.height})`;
  updateButtons();
}

function addStyle(image) {
  if (state.limits && state.styles.length >= state.limits.max_styles) {
    showError(`at most ${state.limits.max_styles} style images`);
    return;
  }
  state.styles.push({ weight: 1, scale: 1, ...image });
  renderStyles();
}

function renderStyles() {
  const list = $("style-list");
  list.replaceChildren();
  state.styles.forEach((style, index) => {
    const label = `style ${index + 1}`;
    const item = thumbnailItem(style, style.name, label, () => {
      state.styles.splice(index, 1);
      renderStyles();
    });
    const knobs = document.createElement("span");
    knobs.className = "knobs";
    knobs.append(knob("weight", `Weight of ${label} (${style.name})`, style, "weight", 0, "any"),
                 knob("scale", `Brush scale of ${label} (${style.name})`, style, "scale", 0.05, "0.05"));
    item.append(knobs);
    list.append(item);
  });
  updateButtons();
}

// One list item: the image's thumbnail, its name (the full name as a tooltip) and a remove button.
function thumbnailItem(image, label, what, onRemove) {
  const item = document.createElement("li");
  const img = document.createElement("img");
  img.src = image.url;
  img.alt = "";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label;
  name.title = image.name;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "\u00d7";
  remove.setAttribute("aria-label", `Remove ${what} (${image.name})`);
  remove.title = `Remove ${what}`;
  remove.className = "remove";
  remove.addEventListener("click", onRemove);
  item.append(img, name, remove);
  return item;
}

// A small list of chosen files (fine style, masks), each with a remove button.
function renderFileList(listId, images, what, onRemove) {
  const list = $(listId);
  list.replaceChildren();
  images.forEach((image, index) => {
    const label = images.length > 1 ? `${what} ${index + 1}` : what;
    list.append(thumbnailItem(image, `${image.name} (${image.width}x${image.height})`, label, () => onRemove(index)));
  });
}

function renderExtras() {
  renderFileList("fine-style-list", state.fineStyle ? [state.fineStyle] : [], "the fine style", () => {
    state.fineStyle = null;
    renderExtras();
  });
  renderFileList("mask-list", state.masks, "mask", (index) => {
    state.masks.splice(index, 1);
    renderExtras();
  });
}

function wireExtra(inputId, role) {
  const input = $(inputId);
  input.addEventListener("change", async () => {
    const files = Array.from(input.files);
    input.value = "";
    showError("");
    for (const file of files) {
      try {
        const image = await upload(file);
        if (role === "fine") state.fineStyle = image; else state.masks.push(image);
      } catch (err) {
        showError(err.message);
        break;
      }
    }
    renderExtras();
  });
}

function knob(label, name, style, key, min, step) {
  const wrap = document.createElement("label");
  const input = document.createElement("input");
  input.type = "number";
  input.min = String(min);
  input.step = step;
  input.value = String(style[key]);
  input.className = `style-${key}`;
  input.setAttribute("aria-label", name);
  input.addEventListener("input", () => { style[key] = input.value; });
  const text = document.createElement("span");
  text.textContent = label;
  text.setAttribute("aria-hidden", "true");
  wrap.append(text, input);
  return wrap;
}

async function addFiles(files, role) {
  showError("");
  for (const file of files) {
    try {
      const image = await upload(file);
      if (role === "content") setContent(image); else addStyle(image);
    } catch (err) {
      showError(err.message);
      return;
    }
    if (role === "content") return;
  }
}

// A drop zone: one keyboard stop (the zone itself, a button) that opens the file chooser on click,
// Enter and Space; the file input inside is hidden and out of the tab order.
function wireDrop(zoneId, inputId, role) {
  const zone = $(zoneId);
  const input = $(inputId);
  input.addEventListener("change", () => {
    addFiles(Array.from(input.files), role);
    input.value = "";
  });
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(Array.from(event.dataTransfer.files), role);
  });
}

function sampleImage(id) {
  const sample = state.samples.find((s) => s.id === id);
  return sample && { id: sample.id, name: sample.name, width: sample.width, height: sample.height, url: imageUrl(sample.id) };
}

// The photo list uses the chosen sample at once (arrowing through it tries each in turn); the style
// list adds one only on Add or Enter, so that arrowing through it adds nothing.
async function loadSamples() {
  state.samples = await api("GET", "/api/samples");
  for (const selectId of ["content-sample", "style-sample"]) {
    const select = $(selectId);
    for (const sample of state.samples) {
      const option = document.createElement("option");
      option.value = sample.id;
      option.textContent = sampleLabel(sample.name);
      select.append(option);
    }
  }
  const content = $("content-sample");
  content.addEventListener("change", () => {
    const image = sampleImage(content.value);
    if (!image) return;
    showError("");
    setContent(image);
  });
  const style = $("style-sample");
  const addSample = () => {
    const image = sampleImage(style.value);
    if (!image) {
      showError("choose a sample style in the list first");
      return;
    }
    showError("");
    addStyle(image);
  };
  $("style-sample-add").addEventListener("click", addSample);
  style.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      addSample();
    }
  });
}

// ---------------------------------------------------------------- More settings, from /api/status

// The page's own controls name their settings in data-setting (the Settings panel, the styles' weight and
// scale, the start). Every other setting the studio may send gets a row in More settings, built from its
// description in /api/status (StyleConfig's schema), so a new setting appears here without an edit to the
// page. A row left empty is not sent: the setting keeps its default, shown as the placeholder.

function isNumber(setting) {
  return setting.kind === "int" || setting.kind === "float";
}

function isList(setting) {
  return setting.many || setting.one_or_many;
}

// "tv-weight" -> "TV weight", "style-anchor" with units px -> "Style anchor (px)": words without a vowel are
// abbreviations.
function settingTitle(setting) {
  const words = setting.label.split("-").map((w) => (/[aeiouy]/.test(w) ? w : w.toUpperCase()));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1) + (setting.units === "px" ? " (px)" : "");
}

function settingControl(setting) {
  let control;
  if (setting.kind === "bool") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = Boolean(setting.default);
  } else if (setting.choices.length && !isList(setting)) {
    control = document.createElement("select");
    const empty = document.createElement("option");
    empty.value = "";
    empty.textContent = setting.default_text == null ? "default" : `default (${setting.default_text})`;
    control.append(empty);
    for (const choice of setting.choices) {
      const option = document.createElement("option");
      option.value = choice;
      option.textContent = choice;
      control.append(option);
    }
  } else {
    control = document.createElement("input");
    if (isNumber(setting) && !isList(setting)) {
      control.type = "number";
      control.step = setting.kind === "int" ? "1" : "any";
      if (setting.minimum != null) control.min = String(setting.minimum);
      if (setting.maximum != null) control.max = String(setting.maximum);
    } else {
      control.type = "text";  // a list: comma-separated
      control.spellcheck = false;
      control.autocomplete = "off";
    }
    control.placeholder = setting.default_text == null ? "default" : setting.default_text;
    control.dataset.placeholder = control.placeholder;
  }
  // The setting's label as the id (the ids tests and the schedule help use), unless the page has it already.
  control.id = document.getElementById(setting.label) ? `setting-${setting.label}` : setting.label;
  control.title = setting.help;
  return control;
}

function settingRow(setting) {
  const row = document.createElement("div");
  row.className = "field";
  row.dataset.setting = setting.name;
  const control = settingControl(setting);
  const label = document.createElement("label");
  label.htmlFor = control.id;
  label.textContent = settingTitle(setting);
  label.title = setting.help;
  row.append(label, control);
  state.fields.push({ setting, control });
  return row;
}

// The rows, group by group in the order of `artistyle --help`; a row of the page's own in More settings
// (init's) moves to its setting's place.
function buildSettingsForm(groups) {
  const form = $("more-settings");
  const own = new Map(Array.from(form.querySelectorAll(":scope > .field[data-setting]"),
    (row) => [row.dataset.setting, row]));
  state.fields = [];
  for (const group of groups) {
    const rows = [];
    for (const setting of group.settings) {
      if (own.has(setting.name)) rows.push(own.get(setting.name));
      else if (!document.querySelector(`[data-setting~="${setting.name}"]`)) rows.push(settingRow(setting));
    }
    if (!rows.length) continue;
    const heading = document.createElement("h3");
    heading.textContent = group.group;
    form.append(heading, ...rows);
  }
}

function fieldControl(name) {
  const field = state.fields.find((f) => f.setting.name === name);
  return field ? field.control : null;
}

// A row's value as the settings hold it, or undefined when it is left at the default (empty; a checkbox
// as the default). List items that are not numbers are sent as typed: the studio's message names them.
function readSetting(setting, control) {
  if (setting.kind === "bool") return control.checked === Boolean(setting.default) ? undefined : control.checked;
  if (control.validity && control.validity.badInput) throw new Error(`${settingTitle(setting)} must be a number`);
  const text = control.value.trim();
  if (text === "") return undefined;
  if (!isList(setting)) return isNumber(setting) ? Number(text) : text;
  const items = text.split(",").map((s) => s.trim()).filter((s) => s)
    .map((item) => (isNumber(setting) && Number.isFinite(Number(item)) ? Number(item) : item));
  if (!items.length) return undefined;
  return setting.one_or_many && items.length === 1 ? items[0] : items;
}

function showSetting(setting, control, value) {
  if (setting.kind === "bool") control.checked = value == null ? Boolean(setting.default) : Boolean(value);
  else control.value = value == null ? "" : Array.isArray(value) ? value.join(",") : String(value);
}

// A fast start's own value in an empty box's placeholder (text), else the default's.
function placeholder(name, text) {
  const control = fieldControl(name);
  if (control && control.dataset.placeholder !== undefined) control.placeholder = text ?? control.dataset.placeholder;
}

// ---------------------------------------------------------------- settings

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

// The page's own controls, then every More settings row that is filled in.
function collectSettings() {
  const settings = {
    size: numberOrNull("size"),
    steps: numberOrNull("steps"),
    style_weight: Number(formatWeight(Number($("style-strength").value))),
    preserve_color: $("preserve-color").value || null,
    original_colors: $("original-colors").checked,
    seed: numberOrNull("seed"),
    padding: $("padding").value,
    init: $("init").value,
  };
  if (settings.steps === null) delete settings.steps;   // the library's default
  for (const { setting, control } of state.fields) {
    const value = readSetting(setting, control);
    if (value !== undefined) settings[setting.name] = value;
  }
  if (state.styles.length > 1) settings.style_blend = state.styles.map((s) => Number(s.weight));
  if (state.styles.some((s) => Number(s.scale) !== 1)) settings.style_scale = state.styles.map((s) => Number(s.scale));
  return settings;
}

function setStrength(weight) {
  const strength = $("style-strength");
  strength.value = Math.log10(weight);
  showStrength();
}

function showStrength() {
  const text = formatWeight(Number($("style-strength").value));
  $("style-strength-value").textContent = text;
  $("style-strength").setAttribute("aria-valuetext", `style weight ${text}`);
}

// The form from a job's settings (as the server recorded them, the seed included) and its images.
function restoreForm(job) {
  const s = job.settings;
  const put = (id, value) => { $(id).value = value == null ? "" : String(value); };
  // Steps and the More settings rows go back only if the run was sent them: left empty they were the
  // defaults, which a fast start fills with its own schedule (and an empty box keeps doing so).
  const given = new Set(job.given || Object.keys(s));
  const sent = (key) => (given.has(key) ? s[key] : null);
  put("size", s.size);
  put("steps", sent("steps"));
  setStrength(s.style_weight);
  put("preserve-color", s.preserve_color || "");
  $("original-colors").checked = Boolean(s.original_colors);
  put("seed", s.seed);
  put("padding", s.padding);
  put("init", s.init);
  for (const { setting, control } of state.fields) showSetting(setting, control, sent(setting.name));
  const images = job.images;
  setContent(fromServer(images.content));
  const blend = s.style_blend || [], scale = s.style_scale || [];
  state.styles = images.styles.map((info, i) => ({
    ...fromServer(info),
    weight: blend.length > 1 ? blend[i] : (blend[0] ?? 1),
    scale: scale.length > 1 ? scale[i] : (scale[0] ?? 1),
  }));
  renderStyles();
  state.fineStyle = fromServer(images.fine_style);
  state.masks = images.masks.map(fromServer);
  renderExtras();
  updateSchedule();
}

// The Steps field's help: the iterations the schedule runs at the chosen size (the server's numbers), with
// the fast start's own schedule when it starts fast and Steps is empty; the empty boxes' placeholders follow.
function updateSchedule() {
  clearTimeout(state.scheduleTimer);
  state.scheduleTimer = setTimeout(async () => {
    const params = new URLSearchParams();
    for (const [name, control] of [["size", $("size")], ["steps", $("steps")], ["scales", fieldControl("scales")],
      ["init", $("init")]]) {
      const text = control ? control.value.trim() : "";
      if (text) params.set(name, text);
    }
    const help = $("steps-help");
    try {
      const plan = await api("GET", `/api/schedule?${params}`);
      const fast = state.fast.schedule;
      // The default steps: the first scale's, where the library decides them.
      const steps = state.defaults.steps ?? plan.steps[0];
      const empty = $("steps").value.trim() !== "" ? ""
        : plan.fast ? "Empty: the fast start's schedule. " : `Empty: the default, ${steps}. `;
      if (plan.sizes.length > 1) {
        help.textContent = `${empty}At ${plan.size} px: ${plan.steps.join(" + ")} = ${plan.total} iterations over ` +
          `${plan.sizes.length} scales (${plan.sizes.join(", ")} px)` +
          (plan.fast ? ", from the fast start." : "; finer scales need fewer.");
      } else {
        help.textContent = plan.fast ? `${empty}At ${plan.size} px: ${plan.total} iterations on one scale (fast start).`
          : `${empty}At ${plan.size} px: ${plan.total} iterations at one scale.`;
      }
      help.dataset.total = String(plan.total);
      help.dataset.fast = String(plan.fast);
      $("steps").placeholder = plan.fast ? plan.steps.join(" + ") : String(steps);
      placeholder("scales", plan.fast ? `${plan.sizes.length} (fast start)` : null);
      placeholder("scale_steps", plan.fast ? `${plan.steps.join(",")} (fast start)` : null);
      placeholder("content_weight", plan.fast ? `${fast.content_weight} (fast start)` : null);
    } catch (err) {
      help.textContent = err.message;
      help.dataset.total = "";
    }
  }, 150);
}

// ---------------------------------------------------------------- jobs

async function start() {
  showError("");
  if (!state.content || !state.styles.length) {
    showError("choose a photo and at least one style first");
    return;
  }
  let settings;
  try {
    settings = collectSettings();
  } catch (err) {
    showError(err.message);
    return;
  }
  const body = JSON.stringify({
    content: state.content.id,
    styles: state.styles.map((s) => s.id),
    settings,
    ...(state.fineStyle ? { fine_style: state.fineStyle.id } : {}),
    ...(state.masks.length ? { masks: state.masks.map((m) => m.id) } : {}),
  });
  $("start").disabled = true;
  try {
    const job = await api("POST", "/api/jobs", body, { "Content-Type": "application/json" });
    follow(job);
    $("cancel").focus();
    refreshHistory();
  } catch (err) {
    showError(err.message);
    updateButtons();
  }
}

// Follow a job: its id goes in the address (#job=ID) and in local storage, so a reload or a new
// page comes back to it.
function follow(job) {
  if (state.events) state.events.close();
  state.job = job.id;
  state.jobContent = job.images && job.images.content ? imageUrl(job.images.content.id) : null;
  state.losses = [];
  state.shownPreview = 0;
  state.milestone = "";
  history.replaceState(null, "", `#job=${encodeURIComponent(job.id)}`);
  try { localStorage.setItem(STORED_JOB, job.id); } catch (err) { /* private mode: the address is enough */ }
  $("preview").hidden = true;
  $("before").hidden = true;
  $("compare-row").hidden = true;
  $("preview-empty").hidden = false;
  $("orphan").hidden = true;
  setDownload(null);
  show(job);
  if (!ACTIVE.includes(job.status)) {
    // A finished job: one look at its losses is enough.
    api("GET", jobUrl(job.id)).then(show).catch(() => {});
    return;
  }
  const events = new EventSource(jobUrl(job.id, "events"));
  state.events = events;
  events.onmessage = (message) => show(JSON.parse(message.data));
  events.onerror = () => {
    // The stream ends when the job does; EventSource would reconnect, so stop it then.
    if (events.readyState === EventSource.CLOSED || !ACTIVE.includes($("status").dataset.status)) events.close();
  };
}

async function cancel() {
  if (!state.job) return;
  $("cancel").disabled = true;
  try {
    show(await api("POST", jobUrl(state.job, "cancel")));
  } catch (err) {
    showError(err.message);
  }
}

function where(job) {
  if (!job.width) return "";
  const edge = Math.max(job.width, job.height);
  return job.scales > 1 ? `scale ${job.scale + 1} of ${job.scales}, ${edge} px` : `${job.width}x${job.height}`;
}

function showProgress(job) {
  const wrap = $("progress-wrap");
  const bar = $("progress");
  const running = job.status === "running" || job.status === "cancelling";
  wrap.hidden = !(running || job.status === "done");
  bar.max = Math.max(job.steps, 1);
  bar.value = job.status === "done" ? bar.max : job.iteration;
  const parts = [];
  if (job.iteration) {
    parts.push(`${where(job)}`, `iteration ${job.iteration} of ${job.steps}`);
    if (job.rate) parts.push(job.rate >= 1 ? `${job.rate.toFixed(1)} it/s` : `${(1 / job.rate).toFixed(2)} s/it`);
    if (running && job.eta != null) parts.push(`ETA ${formatDuration(job.eta)}`);
    parts.push(`${formatDuration(job.seconds)} elapsed`);
  }
  $("progress-text").textContent = parts.join(" \u00b7 ");
  const percent = job.steps ? Math.round((100 * bar.value) / bar.max) : 0;
  bar.setAttribute("aria-valuetext", `${percent}%${job.iteration ? `, ${where(job)}` : ""}`);
}

function show(job) {
  if (job.id !== state.job) return;
  const status = $("status");
  status.dataset.status = job.status;
  status.dataset.iteration = String(job.iteration);
  state.steps = job.steps;
  if (job.losses_from !== undefined && job.losses.length + job.losses_from >= state.losses.length) {
    state.losses.length = Math.min(state.losses.length, job.losses_from);
    state.losses.push(...job.losses);
  }
  const seconds = `${job.seconds.toFixed(1)} s`;
  switch (job.status) {
    case "queued":
      status.textContent = `Waiting in the queue: place ${job.position} ` +
        `(${job.position === 1 ? "next, after the run in progress" : `${job.position - 1} more before it`}).`;
      announce("queued", status.textContent);
      break;
    case "running":
      status.textContent = job.iteration
        ? `Painting ${where(job)}: iteration ${job.iteration} of ${job.steps}, loss ${formatLoss(job.loss)}, ${seconds}.`
        : job.preview ? "The fast start's first guess is in the preview; refining it\u2026" : "Preparing the run\u2026";
      if (job.iteration) {
        announce(`scale:${job.scale}`, `Painting ${where(job)}; ${job.steps} iterations in all.`);
      } else {
        announce("preparing", "Run started; preparing.");
      }
      break;
    case "cancelling":
      status.textContent = "Cancelling\u2026";
      break;
    case "done":
      status.textContent = `Done: ${job.output_width}x${job.output_height}, ${job.iteration} iterations in ${seconds} (seed ${job.seed}).`;
      announce("done", status.textContent);
      break;
    case "cancelled":
      status.textContent = (job.iteration ? `Cancelled at iteration ${job.iteration} of ${job.steps}.`
        : `Cancelled before the first iteration; there is no ${job.preview ? "result (only the first guess)" : "image"}.`) +
        (job.result ? " The image so far can be downloaded." : "");
      announce("cancelled", status.textContent);
      break;
    case "failed":
      status.textContent = "The run failed.";
      announce("failed", `The run failed: ${job.error}`);
      showError(job.error);
      break;
    default:
      status.textContent = job.status;
  }
  showProgress(job);
  document.body.classList.toggle("running", ACTIVE.includes(job.status));
  if (job.preview > state.shownPreview) {
    state.shownPreview = job.preview;
    const preview = $("preview");
    preview.src = `${jobUrl(job.id, "preview.jpg")}?v=${job.preview}`;
    preview.dataset.version = String(job.preview);
    preview.hidden = false;
    $("preview-empty").hidden = true;
  }
  if (job.result && state.jobContent) {
    $("preview").alt = `The result: ${job.output_width}x${job.output_height}, seed ${job.seed}`;
    $("before").src = state.jobContent;
    $("before").hidden = false;
    $("compare-row").hidden = false;
    compare();
  }
  setDownload(job.result ? job : null);
  if (!ACTIVE.includes(job.status)) {
    if (state.events) {
      state.events.close();
      state.events = null;
      refreshHistory();
    }
  }
  updateButtons();
  drawLoss();
}

// Before / after: the photo over the result, cut at the slider's place (0: all result, 100: all photo).
function compare() {
  const value = Number($("compare").value);
  $("before").style.clipPath = `inset(0 ${100 - value}% 0 0)`;
  $("compare").setAttribute("aria-valuetext", value === 0 ? "the result" : value === 100 ? "the photo"
    : `the photo on the left ${value}%, the result on the right`);
}

function setDownload(job) {
  const link = $("download");
  if (job) {
    link.href = jobUrl(job.id, "result.png");
    link.setAttribute("download", "");
    link.classList.remove("disabled");
    link.setAttribute("aria-disabled", "false");
  } else {
    link.removeAttribute("href");
    link.classList.add("disabled");
    link.setAttribute("aria-disabled", "true");
  }
}

function updateButtons() {
  const status = $("status");
  const active = ACTIVE.includes(status.dataset.status);
  if (status.dataset.status === "idle") {
    status.textContent = state.content && state.styles.length ? "Ready: press Start."
      : state.content ? "Now choose a style." : "Choose a photo and a style.";
  }
  $("start").disabled = active || !state.content || !state.styles.length;
  $("cancel").disabled = !active || $("status").dataset.status === "cancelling";
}

// ---------------------------------------------------------------- history

function describeSettings(job) {
  const s = job.settings;
  const names = [job.images.content, ...job.images.styles].map((i) => sampleLabel(i.name)).join(" + ");
  const size = job.output_width ? `${job.output_width}x${job.output_height}` : `${s.size} px`;
  return `${names}; ${size}, ${job.steps || s.steps} iterations, style weight ${s.style_weight}` +
    `${s.preserve_color ? `, colours: ${s.preserve_color}` : ""}`;
}

function historyItem(job, number) {
  const item = document.createElement("li");
  item.dataset.id = job.id;
  item.dataset.status = job.status;
  const label = `result ${number}`;
  const thumb = document.createElement("button");
  thumb.type = "button";
  thumb.className = "thumb";
  thumb.setAttribute("aria-label", `Show ${label}`);
  if (job.preview) {
    const img = document.createElement("img");
    img.src = `${jobUrl(job.id, "preview.jpg")}?v=${job.preview}`;
    img.alt = "";
    thumb.append(img);
  }
  thumb.addEventListener("click", () => follow(job));
  const meta = document.createElement("p");
  meta.className = "meta small";
  const head = document.createElement("strong");
  head.textContent = ACTIVE.includes(job.status) ? `${job.status}` :
    `${job.status}, ${job.seconds.toFixed(1)} s, seed ${job.seed ?? "-"}`;
  const text = document.createElement("span");
  text.textContent = describeSettings(job);
  meta.append(head, document.createElement("br"), text);
  const reuse = document.createElement("button");
  reuse.type = "button";
  reuse.className = "small-button reuse";
  reuse.textContent = "Use settings";
  reuse.setAttribute("aria-label", `Use settings of ${label} (seed ${job.seed ?? "random"})`);
  reuse.addEventListener("click", () => {
    restoreForm(job);
    $("status").textContent = `The settings of ${label} are in the form; Start paints it again.`;
  });
  item.append(thumb, meta, reuse);
  if (job.result) {
    const link = document.createElement("a");
    link.className = "button small-button";
    link.href = jobUrl(job.id, "result.png");
    link.setAttribute("download", "");
    link.textContent = "PNG";
    link.setAttribute("aria-label", `PNG of ${label}, download`);
    item.append(link);
  }
  return item;
}

async function refreshHistory() {
  let jobs;
  try {
    jobs = await api("GET", "/api/jobs");
  } catch (err) {
    return [];
  }
  const list = $("history");
  const finished = jobs.filter((j) => !ACTIVE.includes(j.status) && j.status !== "failed");
  list.replaceChildren(...finished.map((job, i) => historyItem(job, finished.length - i)));
  list.dataset.count = String(finished.length);
  // A run started from a page that is gone (closed, or another browser): offer to watch or cancel it,
  // so a new Start does not wait behind it unknowingly.
  const orphan = jobs.find((j) => ACTIVE.includes(j.status) && j.id !== state.job);
  const banner = $("orphan");
  if (orphan && !ACTIVE.includes($("status").dataset.status)) {
    $("orphan-text").textContent = `A run started earlier is ${orphan.status === "queued" ? "waiting in the queue" : "running"} ` +
      `(${describeSettings(orphan)}). A new Start would wait for it.`;
    banner.dataset.id = orphan.id;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  return jobs;
}

// ---------------------------------------------------------------- loss curve

function drawLoss() {
  const canvas = $("loss");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 420;
  const height = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  const colours = getComputedStyle(document.documentElement);
  const colour = (name) => colours.getPropertyValue(name).trim();
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const values = state.losses.filter((v) => v > 0 && Number.isFinite(v)).map(Math.log10);
  canvas.dataset.points = String(state.losses.length);
  canvas.setAttribute("aria-label", values.length
    ? `Loss per iteration, log scale: ${state.losses.length} of ${state.steps} iterations, from ` +
      `${formatLoss(state.losses[0])} to ${formatLoss(state.losses[state.losses.length - 1])}`
    : "Loss per iteration: no iterations yet");
  const left = 46, right = 10, top = 10, bottom = 24;
  const plotW = width - left - right, plotH = height - top - bottom;
  ctx.strokeStyle = colour("--line");
  ctx.fillStyle = colour("--muted");
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeRect(left, top, plotW, plotH);
  if (!values.length) {
    ctx.fillText("no iterations yet", left + 8, top + 18);
    return;
  }
  let low = Math.floor(Math.min(...values)), high = Math.ceil(Math.max(...values));
  if (high === low) high = low + 1;
  const steps = Math.max(state.steps, values.length, 2);
  const x = (i) => left + (plotW * i) / (steps - 1);
  const y = (v) => top + plotH * (1 - (v - low) / (high - low));
  // A grid line at each power of ten.
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.max(1, Math.ceil((high - low) / 5));
  for (let d = low; d <= high; d += every) {
    ctx.beginPath();
    ctx.moveTo(left, y(d));
    ctx.lineTo(left + plotW, y(d));
    ctx.stroke();
    ctx.fillText(`1e${d}`, left - 4, y(d));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText("1", left, top + plotH + 6);
  ctx.fillText(String(steps), left + plotW, top + plotH + 6);
  ctx.fillText("iteration", left + plotW / 2, top + plotH + 6);
  ctx.strokeStyle = colour("--accent");
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
}

// ---------------------------------------------------------------- start-up

// The job to come back to: the address's #job=ID, else the one this browser last followed.
function rememberedJob() {
  const match = /(?:^|[#&])job=([^&]+)/.exec(location.hash);
  if (match) return decodeURIComponent(match[1]);
  try { return localStorage.getItem(STORED_JOB); } catch (err) { return null; }
}

async function reattach() {
  const id = rememberedJob();
  if (!id) return;
  try {
    const job = await api("GET", jobUrl(id));
    restoreForm(job);
    follow(job);
  } catch (err) {
    // Forgotten (the studio was restarted, or it is an old id): start afresh.
    history.replaceState(null, "", location.pathname);
    try { localStorage.removeItem(STORED_JOB); } catch (e) { /* nothing kept */ }
  }
}

async function init() {
  wireDrop("content-drop", "content-file", "content");
  wireDrop("style-drop", "style-file", "style");
  wireExtra("fine-style-file", "fine");
  wireExtra("mask-files", "mask");
  const strength = $("style-strength");
  strength.addEventListener("input", showStrength);
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
  $("compare").addEventListener("input", compare);
  for (const id of ["size", "steps"]) $(id).addEventListener("input", updateSchedule);
  $("init").addEventListener("change", updateSchedule);
  $("orphan-watch").addEventListener("click", async () => {
    try {
      const job = await api("GET", jobUrl($("orphan").dataset.id));
      restoreForm(job);
      follow(job);
    } catch (err) {
      showError(err.message);
    }
  });
  $("orphan-cancel").addEventListener("click", async () => {
    try {
      await api("POST", jobUrl($("orphan").dataset.id, "cancel"));
    } catch (err) {
      showError(err.message);
    }
    $("orphan").hidden = true;
    setTimeout(refreshHistory, 500);
  });
  window.addEventListener("resize", drawLoss);
  try {
    const status = await api("GET", "/api/status");
    const { limits, defaults, fast } = status;
    state.limits = limits;
    state.defaults = defaults;
    state.fast = fast;
    $("device").textContent = `ArtiStyle ${status.version} on ${status.device}`;
    $("limits").textContent = `Images up to ${megabytes(limits.max_upload_bytes)} and ` +
      `${(limits.max_pixels / 1e6).toPrecision(3).replace(/\.?0+$/, "")} megapixels each; output up to ${limits.max_size} px.`;
    $("size").value = defaults.size;
    $("size").max = limits.max_size;
    // Steps and the More settings rows start empty, meaning "the default": a fast start then gets its own schedule.
    $("steps").value = "";
    $("steps").max = limits.max_steps;
    setStrength(defaults.style_weight);
    buildSettingsForm(status.settings);
    const scales = fieldControl("scales");
    if (scales) scales.addEventListener("input", updateSchedule);
    if (!fast.available) {
      // Without the fast extra the page starts from noise and says what to install.
      const option = $("init").querySelector("option[value=fast]");
      option.disabled = true;
      option.textContent = "fast: needs the fast extra";
      option.title = fast.message;
      $("init-help").textContent = fast.message;
    }
    $("padding").value = defaults.padding;
    $("init").value = defaults.init;
    await loadSamples();
    updateSchedule();
    await reattach();
    await refreshHistory();
  } catch (err) {
    showError(err.message);
  }
  updateButtons();
  drawLoss();
  document.body.dataset.ready = "true";
}

init();
