// ArtiStyle studio: the page's logic. No libraries, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["queued", "running", "cancelling"];
const STORED_JOB = "artistyle.job";  // localStorage: the job this browser last started or watched
const STORED_SEEN = "artistyle.seen";  // localStorage: that job as last seen, and the studio process it ran in
const STOPPED = "the studio stopped; start it again with `artistyle web` (this page reconnects by itself)";
const PULSE_MS = 1500;  // between looks at the studio: a stopped one shows within about 2 s
const PULSE_TIMEOUT_MS = 3000;  // a look unanswered this long counts as a studio gone
const MAX_RUNS = 8;  // runs queued by one Start
const STORED_NOTIFY = "artistyle.notify";  // localStorage: "1" where the user asked for a notification at the end

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
  instance: null,         // the studio process this page talks to (/api/status, /api/pulse)
  revision: null,         // of the studio's jobs, as last listed in the History
  lost: false,            // the studio does not answer
  checking: null,         // the look at the studio under way (a promise)
  lastJob: null,          // the followed job as last shown
  rateUnit: null,         // "it/s" or "s/it": the unit of that job's rate (formatRate)
  history: new Map(),     // id -> {job, item, gone}: the History's entries
  mine: new Set(),        // the jobs this page started (another page's are offered in the banner)
  batch: [],              // the runs queued by the same Start after the one followed, in order
  offer: null,            // {record, name}: the settings of a painted PNG just added, offered
};

// ---------------------------------------------------------------- helpers

function megabytes(bytes) {
  return `${Number((bytes / 1e6).toPrecision(3))} MB`;
}

// The error line (or lines: a list, one per problem), brought into view where it is off the screen (a phone).
function showError(message) {
  const box = $("error");
  const text = Array.isArray(message) ? message.join("\n") : message || "";
  box.textContent = text;
  box.hidden = !text;
  if (text) reveal(box, "center");
}

// Scroll an element into view if it is not (at a phone's width much of the page is below the screen).
function reveal(element, block = "nearest") {
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) element.scrollIntoView({ block });
}

// A request to the studio: its JSON, or an Error with the studio's one-line message (and the HTTP status);
// an Error with `lost` set where the studio did not answer at all (stopped, or no answer within `timeout` ms).
async function api(method, url, body, headers, timeout) {
  let response;
  // The studio refuses a POST without this header: a page on another site cannot send it without asking first.
  const sent = method === "GET" ? headers : { ...headers, "X-ArtiStyle": "1" };
  const abort = new AbortController();
  const timer = timeout ? setTimeout(() => abort.abort(), timeout) : 0;
  try {
    response = await fetch(url, { method, body, headers: sent, signal: abort.signal });
  } catch (err) {
    const error = new Error(STOPPED);
    error.lost = true;
    throw error;
  } finally {
    clearTimeout(timer);
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
  // The file itself is kept: should the studio be restarted, it is sent again.
  return { id: info.id, name: info.name, url: URL.createObjectURL(file), width: info.width, height: info.height,
           sha256: info.sha256, blob: file, record: info.record || null };
}

// An image the studio has (a reloaded page's form): its bytes are fetched once in the background, so that a
// restarted studio can be sent it again.
function fromServer(info) {
  if (!info) return null;
  const image = { id: info.id, name: info.name, width: info.width, height: info.height, sha256: info.sha256,
                  url: imageUrl(info.id) };
  if (!info.id.startsWith("sample:")) {
    fetch(image.url).then((r) => (r.ok ? r.blob() : null)).then((blob) => { if (blob) image.blob = blob; })
      .catch(() => {});
  }
  return image;
}

function clearContent() {
  state.content = null;
  const thumb = $("content-thumb");
  thumb.removeAttribute("src");
  thumb.alt = "";
  thumb.hidden = true;
  $("content-hint").hidden = false;
  $("content-name").textContent = "";
  updateButtons();
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

// Add a style; the reason it is not added (already there, or too many), else null.
function addStyle(image) {
  const same = state.styles.find((s) => s.id === image.id || (image.sha256 && s.sha256 === image.sha256));
  if (same) {
    return `'${image.name}' is already among the styles${same.name !== image.name ? ` (as '${same.name}')` : ""}`;
  }
  if (state.limits && state.styles.length >= state.limits.max_styles) {
    return `'${image.name}' is not added: at most ${state.limits.max_styles} style images`;
  }
  state.styles.push({ weight: 1, scale: 1, ...image });
  renderStyles();
  return null;
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
    const problems = [];
    for (const file of files) {
      try {
        const image = await upload(file);
        if (role === "fine") state.fineStyle = image; else state.masks.push(image);
      } catch (err) {
        if (err.lost) {
          studioLost();
          break;
        }
        problems.push(err.message);
      }
    }
    renderExtras();
    showError(problems);
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

// Files dropped or chosen: each is sent in turn, and every one that cannot be used is reported (the others are
// used all the same). A photo zone takes the first that works.
async function addFiles(files, role) {
  showError("");
  const problems = [];
  let photo = null, added = 0;
  for (const file of files) {
    if (photo) {
      problems.push(`'${file.name}' is not used: one photo at a time ('${photo.name}'); drop paintings on the Style zone`);
      continue;
    }
    try {
      const image = await upload(file);
      if (role === "content") {
        setContent(image);
        photo = image;
      } else {
        const problem = addStyle(image);
        if (problem) problems.push(problem);
        else added += 1;
      }
      if (photo === image) added += 1;
      offerRecord(image);
    } catch (err) {
      if (err.lost) {
        studioLost();
        return added;
      }
      problems.push(err.message);
    }
  }
  showError(problems);
  return added;
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
  return sample && { id: sample.id, name: sample.name, width: sample.width, height: sample.height,
                     sha256: sample.sha256, url: imageUrl(sample.id) };
}

// The photo list uses the chosen sample at once (arrowing through it tries each in turn); the style
// list adds one only on Add or Enter, so that arrowing through it adds nothing.
async function loadSamples() {
  state.samples = await api("GET", "/api/samples");
  // The photos in the photo list, the paintings in the style list.
  for (const [selectId, kind] of [["content-sample", "photo"], ["style-sample", "painting"]]) {
    const select = $(selectId);
    for (const sample of state.samples.filter((s) => (s.kind || "photo") === kind)) {
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
    showError(addStyle(image) || "");
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

// The form from a job's settings (as the server recorded them) and its images. The seed it ran with goes in the
// Seed box where the user gave one, or with `seed: true` (Use settings: paint that very picture again); a reload
// leaves an empty box empty, so the next Start gets a seed of its own.
function restoreForm(job, { seed = true } = {}) {
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
  put("seed", seed ? s.seed : sent("seed"));
  put("padding", s.padding);
  put("init", s.init);
  for (const { setting, control } of state.fields) showSetting(setting, control, sent(setting.name));
  const images = job.images;
  const blend = s.style_blend || [], scale = s.style_scale || [];
  const knobs = (style, i) => ({
    ...style,
    weight: blend.length > 1 ? blend[i] : (blend[0] ?? 1),
    scale: scale.length > 1 ? scale[i] : (scale[0] ?? 1),
  });
  if (!images) {
    // Settings only (a painted PNG's): the images chosen stay, with the blend where it fits them.
    if (blend.length <= 1 || blend.length === state.styles.length) state.styles = state.styles.map(knobs);
    renderStyles();
    updateSchedule();
    return;
  }
  if (images.content) setContent(fromServer(images.content)); else clearContent();
  state.styles = images.styles.map((info, i) => knobs(fromServer(info), i));
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

// The job request for the form as it is (the settings read from the controls), or null with the error shown.
function jobRequest() {
  if (!state.content || !state.styles.length) {
    showError("choose a photo and at least one style first");
    return null;
  }
  try {
    return {
      content: state.content.id,
      styles: state.styles.map((s) => s.id),
      settings: collectSettings(),
      ...(state.fineStyle ? { fine_style: state.fineStyle.id } : {}),
      ...(state.masks.length ? { masks: state.masks.map((m) => m.id) } : {}),
    };
  } catch (err) {
    showError(err.message);
    return null;
  }
}

// Start: one run, or as many as Runs says, queued one after another with the seeds following on from the Seed
// box (each its own random seed where the box is empty). The page follows the first, then each in turn.
async function start() {
  showError("");
  const request = jobRequest();
  if (!request) return;
  const runs = Math.max(1, Math.min(Math.round(Number($("runs").value)) || 1, MAX_RUNS));
  const seed = request.settings.seed;
  $("start").disabled = true;
  notice("");
  const queued = [];
  try {
    for (let run = 0; run < runs; run++) {
      const settings = { ...request.settings, seed: seed == null ? null : seed + run };
      const job = await api("POST", "/api/jobs", JSON.stringify({ ...request, settings }),
        { "Content-Type": "application/json" });
      queued.push(job.id);
      state.mine.add(job.id);
      if (run === 0) {
        state.batch = [];
        follow(job);
        $("cancel").focus();
      } else {
        state.batch.push(job.id);
      }
    }
  } catch (err) {
    if (err.lost) studioLost();
    else showError(queued.length ? `${queued.length} of ${runs} runs are queued; the others are not: ${err.message}`
      : err.message);
  }
  refreshHistory();
  updateButtons();
}

// Follow a job: its id goes in the address (#job=ID) and in local storage, so a reload or a new
// page comes back to it.
function follow(job) {
  if (state.events) state.events.close();
  state.job = job.id;
  state.jobContent = job.images && job.images.content ? imageUrl(job.images.content.id) : null;
  state.losses = [];
  state.shownPreview = 0;
  state.rateUnit = null;
  state.milestone = "";
  history.replaceState(null, "", `#job=${encodeURIComponent(job.id)}`);
  try { localStorage.setItem(STORED_JOB, job.id); } catch (err) { /* private mode: the address is enough */ }
  $("preview").hidden = true;
  $("before").hidden = true;
  $("compare-row").hidden = true;
  $("preview-empty").hidden = false;
  $("orphan").hidden = true;
  setDownload(null);
  state.lastJob = null;
  show(job);
  if (!ACTIVE.includes(job.status)) {
    // A finished job: one look at its losses is enough.
    api("GET", jobUrl(job.id)).then(show).catch((err) => {
      if (err.lost) studioLost(); else if (err.status === 404) jobMissing(job);
    });
    return;
  }
  const events = new EventSource(jobUrl(job.id, "events"));
  state.events = events;
  events.onmessage = (message) => show(JSON.parse(message.data));
  events.onerror = () => streamBroke(events, job.id);
}

// The job's event stream ended or broke. It ends when the job does (EventSource would reconnect: stop it then);
// otherwise the studio stopped, restarted or forgot the job: a look at it at once says which (the pulse below).
async function streamBroke(events, id) {
  if (state.events !== events) return;
  if (!ACTIVE.includes($("status").dataset.status)) {
    events.close();
    state.events = null;
    return;
  }
  await checkStudio();
  if (state.lost || state.events !== events || events.readyState !== EventSource.CLOSED) return;
  // The studio answers, but refused the stream (EventSource gives up then): the job itself says why.
  state.events = null;
  await resume(id);
}

// Follow the job again (after a blip), or the next run of a Start (`next`): its state now, or why it is gone.
async function resume(id, next = false) {
  try {
    const job = await api("GET", jobUrl(id));
    if (next || state.job === id || state.job === null) follow(job);
  } catch (err) {
    if (err.lost) studioLost();
    else if (err.status === 404) jobGone(!next && state.lastJob && state.lastJob.id === id ? state.lastJob : { id });
  }
}

async function cancel() {
  if (!state.job) return;
  $("cancel").disabled = true;
  // One Start, one Cancel: the runs queued after this one by the same Start go too.
  const rest = state.batch.splice(0);
  for (const id of rest) api("POST", jobUrl(id, "cancel")).catch(() => {});
  try {
    show(await api("POST", jobUrl(state.job, "cancel")));
  } catch (err) {
    if (err.lost) studioLost();
    else if (err.status === 404) await checkStudio();  // restarted, or the job is forgotten
    else showError(err.message);
    updateButtons();
  }
}

function where(job) {
  if (!job.width) return "";
  const edge = Math.max(job.width, job.height);
  return job.scales > 1 ? `scale ${job.scale + 1} of ${job.scales}, ${edge} px` : `${job.width}x${job.height}`;
}

// The rate in one unit for a run: it/s or s/it, whichever reads better at its start, changed only where the rate
// has moved well past 1 it/s (below 2/3 or above 3/2), so that it never flips to and fro around 1.
function formatRate(rate) {
  let unit = state.rateUnit || (rate >= 1 ? "it/s" : "s/it");
  if (unit === "it/s" && rate < 2 / 3) unit = "s/it";
  else if (unit === "s/it" && rate > 3 / 2) unit = "it/s";
  state.rateUnit = unit;
  return unit === "it/s" ? `${rate.toFixed(1)} it/s` : `${(1 / rate).toFixed(2)} s/it`;
}

function showProgress(job) {
  const wrap = $("progress-wrap");
  const bar = $("progress");
  const running = job.status === "running" || job.status === "cancelling";
  wrap.hidden = !(running || job.status === "done" || (job.status === "lost" && job.iteration));
  bar.max = Math.max(job.steps, 1);
  bar.value = job.status === "done" ? bar.max : job.iteration;
  const parts = [];
  if (job.iteration) {
    parts.push(`${where(job)}`, `iteration ${job.iteration} of ${job.steps}`);
    if (job.rate) parts.push(formatRate(job.rate));
    if (running && job.eta != null) parts.push(`ETA ${formatDuration(job.eta)}`);
    parts.push(`${formatDuration(job.seconds)} elapsed`);
  }
  $("progress-text").textContent = parts.join(" \u00b7 ");
  const percent = job.steps ? Math.round((100 * bar.value) / bar.max) : 0;
  bar.setAttribute("aria-valuetext", `${percent}%${job.iteration ? `, ${where(job)}` : ""}`);
}

function show(job) {
  if (job.id !== state.job) return;
  const was = state.lastJob;
  if (!was || was.status !== job.status) remember(job);
  state.lastJob = job;
  const ended = Boolean(was && ACTIVE.includes(was.status) && !ACTIVE.includes(job.status));
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
        : job.first_guess ? "Cancelled before the first iteration: no painting yet, but the fast start's first " +
          "guess is offered (First guess PNG)."
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
  const batch = state.batch.length ? ` (${state.batch.length} more queued)` : "";
  const done = job.steps ? Math.floor((100 * job.iteration) / job.steps) : 0;
  setTitle(job.status === "running" ? `${job.iteration ? `${done}%` : "starting"}${batch}`
    : job.status === "queued" ? `queued${batch}` : job.status === "cancelling" ? "cancelling" : job.status);
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
  const guess = $("first-guess");
  guess.hidden = !job.first_guess;
  if (job.first_guess) guess.href = jobUrl(job.id, "first-guess.png"); else guess.removeAttribute("href");
  if (!ACTIVE.includes(job.status)) {
    if (state.events) {
      state.events.close();
      state.events = null;
      refreshHistory();
    }
  }
  updateButtons();
  drawLoss();
  if (ended) runEnded(job);
}

// A run this page watched has ended: the focus stays on a control that can be used (Cancel is off now), and the
// picture is brought into view (on a phone it moves back below the settings when the run ends).
function runEnded(job) {
  const next = state.batch.shift();
  if (next) {
    // The next run of the same Start: followed at once (the finished one stays in the History).
    resume(next, true);
    return;
  }
  notify(job);
  const focus = document.activeElement;
  if (!focus || focus === document.body || focus.disabled) {
    const next = job.result ? $("download") : job.first_guess ? $("first-guess") : $("start");
    next.focus({ preventScroll: true });
  }
  if (job.preview) reveal($("preview-box"), "start");
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
  $("copy-command").disabled = !state.content || !state.styles.length;
  const last = lastSeed();
  $("seed-last").disabled = last == null;
  $("seed-last").title = last == null ? "No run has ended yet" : `The seed of the last run: ${last}`;
}

// ---------------------------------------------------------------- history

function describeSettings(job) {
  const s = job.settings;
  const names = [job.images.content, ...job.images.styles].map((i) => sampleLabel(i.name)).join(" + ");
  const size = job.output_width ? `${job.output_width}x${job.output_height}` : `${s.size} px`;
  return `${names}; ${size}, ${job.steps || s.steps} iterations, style weight ${s.style_weight}` +
    `${s.preserve_color ? `, colours: ${s.preserve_color}` : ""}`;
}

// The History: the studio's finished jobs, newest first. An entry the studio no longer keeps (it keeps the newest
// few; a restart loses all) stays listed here, marked and explained, without its PNG.
const GONE = {
  forgotten: (max) => `Forgotten: the studio keeps only the newest ${max} results, and this one made room for a ` +
    "newer one. Its settings are still here (Use settings).",
  restarted: () => "Lost: the studio was restarted, and it keeps results in memory only. Its settings are still " +
    "here (Use settings).",
};

function historyItem(job) {
  const item = document.createElement("li");
  item.dataset.id = job.id;
  item.dataset.status = job.status;
  const thumb = document.createElement("button");
  thumb.type = "button";
  thumb.className = "thumb";
  if (job.preview) {
    const img = document.createElement("img");
    img.src = `${jobUrl(job.id, "preview.jpg")}?v=${job.preview}`;
    img.alt = "";
    thumb.append(img);
  }
  thumb.addEventListener("click", () => {
    const entry = state.history.get(job.id);
    if (entry && entry.gone) notice(`${GONE[entry.gone](maxHistory())}`);
    else follow(job);
  });
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
  reuse.addEventListener("click", () => {
    restoreForm(job);
    $("status").textContent = `The settings of ${item.dataset.label} are in the form; Start paints it again.`;
  });
  item.append(thumb, meta, reuse);
  if (job.result) {
    const link = document.createElement("a");
    link.className = "button small-button";
    link.href = jobUrl(job.id, "result.png");
    link.setAttribute("download", "");
    link.textContent = "PNG";
    guardDownload(link, job);
    item.append(link);
  }
  return item;
}

// The names of an entry's controls, by its place in the list ("result 3").
function labelItem(item, job, number) {
  const label = `result ${number}`;
  item.dataset.label = label;
  item.querySelector(".thumb").setAttribute("aria-label", `Show ${label}`);
  item.querySelector(".reuse").setAttribute("aria-label", `Use settings of ${label} (seed ${job.seed ?? "random"})`);
  const link = item.querySelector("a[download]");
  if (link) link.setAttribute("aria-label", `PNG of ${label}, download`);
}

function maxHistory() {
  return state.limits ? state.limits.max_history : 16;
}

// Mark an entry gone ("forgotten" or "restarted"): no PNG any more, and a line saying why.
function markGone(entry, why) {
  entry.gone = why;
  const item = entry.item;
  item.dataset.gone = why;
  const link = item.querySelector("a[download]");
  if (link) link.remove();
  let note = item.querySelector(".gone-note");
  if (!note) {
    note = document.createElement("p");
    note.className = "gone-note small";
    item.append(note);
  }
  note.textContent = GONE[why](maxHistory());
  if (state.job === entry.job.id) {
    setDownload(null);
    notice(`The result on show is gone from the studio. ${GONE[why](maxHistory())}`);
  }
}

// A job the studio answered 404 for, outside a look at the studio: a look first tells a restart from a job
// forgotten.
async function jobMissing(job) {
  await checkStudio();
  if (!state.lost) jobGone(job);
}

// A result link: a result the studio no longer has is explained instead of failing as a download. `job`: the
// job, or a function giving it at the click (the Download button's, which follows the page's job).
function guardDownload(link, which) {
  link.addEventListener("click", (event) => {
    const job = typeof which === "function" ? which() : which;
    if (!job) return;
    const entry = state.history.get(job.id);
    if (link.getAttribute("aria-disabled") === "true" || (entry && entry.gone)) {
      event.preventDefault();
      return;
    }
    // The download goes on; should the studio have dropped the result meanwhile, say so at once.
    fetch(link.href, { method: "HEAD" }).then((response) => {
      if (response.status === 404) jobMissing(entry ? entry.job : job);
    }).catch(() => checkStudio());
  });
}

// The job this page showed or listed is no longer in the studio, which is the same process (a restart is
// studioRestarted's): it was forgotten to make room. Called from a look at the studio too, so it never waits
// for one (see jobMissing).
function jobGone(job) {
  const entry = state.history.get(job.id);
  if (entry && !entry.gone) markGone(entry, "forgotten");
  if (state.job === job.id) {
    if (state.events) {
      state.events.close();
      state.events = null;
    }
    setDownload(null);
    if (ACTIVE.includes($("status").dataset.status) || $("status").dataset.status === "lost") {
      $("status").dataset.status = "idle";
      document.body.classList.remove("running");
    }
    notice(`The run this page showed is no longer in the studio: it keeps only the newest ${maxHistory()} ` +
      "results. Its settings are still in the form.");
    updateButtons();
  }
}

async function refreshHistory() {
  let jobs;
  try {
    jobs = await api("GET", "/api/jobs");
  } catch (err) {
    if (err.lost) studioLost();
    return [];
  }
  const list = $("history");
  const finished = jobs.filter((j) => !ACTIVE.includes(j.status) && j.status !== "failed");
  const kept = new Set(finished.map((j) => j.id));
  for (const entry of state.history.values()) {
    if (!kept.has(entry.job.id) && !entry.gone) markGone(entry, "forgotten");
  }
  for (const job of finished) {
    const entry = state.history.get(job.id);
    // A new entry, or one whose job changed since (a result came); the others keep their element and image.
    if (!entry || entry.job.version !== job.version || entry.gone) {
      state.history.set(job.id, { job, item: historyItem(job), gone: null });
    }
  }
  const entries = Array.from(state.history.values()).sort((a, b) => b.job.created - a.job.created);
  entries.forEach((entry, i) => labelItem(entry.item, entry.job, entries.length - i));
  list.replaceChildren(...entries.map((entry) => entry.item));
  list.dataset.count = String(finished.length);
  // A run started from a page that is gone (closed, or another browser): offer to watch or cancel it,
  // so a new Start does not wait behind it unknowingly.
  const orphan = jobs.find((j) => ACTIVE.includes(j.status) && j.id !== state.job && !state.mine.has(j.id));
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

// ---------------------------------------------------------------- the studio's pulse

// The page looks at the studio every PULSE_MS, and at once when an event stream breaks. A studio that does not
// answer is shown at once (a banner, the run's last state, Start and Cancel as they can be used); when it answers
// again the page comes back by itself: to the same run where the studio was out of reach for a while, or, where
// it is another process (restarted: its jobs, results and uploads are gone), saying what was lost.
function checkStudio() {
  if (!state.checking) state.checking = lookAtStudio().finally(() => { state.checking = null; });
  return state.checking;
}

async function lookAtStudio() {
  let pulse;
  try {
    pulse = await api("GET", "/api/pulse", undefined, undefined, PULSE_TIMEOUT_MS);
  } catch (err) {
    if (err.lost) studioLost();
    return;
  }
  if (state.instance && pulse.instance !== state.instance) await studioRestarted(pulse);
  else if (state.lost) await studioBack();
  if (pulse.revision !== state.revision) {
    state.revision = pulse.revision;
    await refreshHistory();
    await catchUp();
  }
}

// The job list changed: where the run this page follows has ended, show its end even if the event stream missed
// it (a stream opened just after a reload could, on a loaded machine: the page then said "Cancelling..." for good).
async function catchUp() {
  const id = state.job;
  if (!id || !ACTIVE.includes($("status").dataset.status)) return;
  try {
    const job = await api("GET", jobUrl(id));
    if (state.job === id && !ACTIVE.includes(job.status) && ACTIVE.includes($("status").dataset.status)) show(job);
  } catch (err) {
    if (err.lost) studioLost();  // a forgotten job is said where the stream ends
  }
}

function pulseLoop() {
  setTimeout(async () => {
    try {
      await checkStudio();
    } finally {
      pulseLoop();
    }
  }, PULSE_MS);
}

function studioLost() {
  if (state.lost) return;
  state.lost = true;
  if (state.events) {
    state.events.close();
    state.events = null;
  }
  $("connection-text").textContent = "The studio stopped; start it again with `artistyle web`. " +
    "This page reconnects by itself.";
  $("connection").hidden = false;
  const status = $("status");
  const job = state.lastJob;
  if (ACTIVE.includes(status.dataset.status) && job) {
    status.dataset.status = "lost";
    status.textContent = job.status === "queued" ? "The studio stopped while the run waited in the queue."
      : job.iteration ? `The studio stopped during the run, at iteration ${job.iteration} of ${job.steps}.`
        : "The studio stopped before the run's first iteration.";
    showProgress({ ...job, status: "lost" });
    announce("lost", `${status.textContent} Start it again with artistyle web.`);
    document.body.classList.remove("running");
    setTitle("stopped");
  }
  updateButtons();
}

// The same studio answers again: follow the run again where it still exists.
async function studioBack() {
  state.lost = false;
  $("connection").hidden = true;
  if (state.job && (!state.lastJob || ACTIVE.includes(state.lastJob.status))) await resume(state.job);
  updateButtons();
}

// Another studio process answers: the old one's jobs, results and uploads are gone. Say what was lost, put back
// what can be (uploads this page still holds are sent again; the samples are the same), and carry on.
async function studioRestarted(pulse) {
  state.instance = pulse.instance;
  state.lost = false;
  $("connection").hidden = true;
  if (state.events) {
    state.events.close();
    state.events = null;
  }
  const lost = [];
  const job = state.lastJob;
  if (state.job && job) {
    if (ACTIVE.includes(job.status)) {
      lost.push(job.iteration ? `the run you were watching (stopped at iteration ${job.iteration} of ${job.steps})`
        : "the run you were watching (before its first iteration)");
    } else if (job.result) {
      lost.push("the result on show (its PNG)");
    }
  }
  const results = Array.from(state.history.values()).filter((entry) => !entry.gone);
  for (const entry of results) markGone(entry, "restarted");
  if (results.length) lost.push(`${results.length} result${results.length > 1 ? "s" : ""} in the History`);
  const missing = await sendImagesAgain();
  if (missing.length) lost.push(`${missing.join(", ")} (add ${missing.length > 1 ? "them" : "it"} again)`);
  forgetJob();
  const status = $("status");
  status.dataset.status = "idle";
  document.body.classList.remove("running");
  setDownload(null);
  setTitle("");
  notice(`The studio was restarted, so what it kept in memory is gone: ${lost.length ? lost.join("; ") : "nothing " +
    "this page showed"}. The settings are still in the form; Start paints it again.`);
  updateButtons();
}

// The page stops following its job (gone with a restart, or forgotten).
function forgetJob() {
  state.job = null;
  state.lastJob = null;
  history.replaceState(null, "", location.pathname);
  try {
    localStorage.removeItem(STORED_JOB);
    localStorage.removeItem(STORED_SEEN);
  } catch (err) { /* nothing kept */ }
}

// After a restart: every image in the form that this page holds (an upload of its own) is sent again; the
// samples are the same in every studio. Returns the names of those it could not send (shown from the old studio).
async function sendImagesAgain() {
  const missing = [];
  const again = async (image) => {
    if (!image || image.id.startsWith("sample:")) return image;
    if (image.blob) {
      try {
        const sent = await upload(new File([image.blob], image.name, { type: image.blob.type }));
        return { ...image, ...sent, url: image.url };
      } catch (err) { /* missing, below */ }
    }
    missing.push(`'${image.name}'`);
    return null;
  };
  const content = await again(state.content);
  if (content) setContent(content); else clearContent();
  const styles = [];
  for (const style of state.styles) {
    const sent = await again(style);
    if (sent) styles.push({ ...sent, weight: style.weight, scale: style.scale });
  }
  state.styles = styles;
  renderStyles();
  state.fineStyle = await again(state.fineStyle);
  const masks = [];
  for (const mask of state.masks) {
    const sent = await again(mask);
    if (sent) masks.push(sent);
  }
  state.masks = masks;
  renderExtras();
  return missing;
}

// What the page keeps of the job it follows, for a reload after a restart: the job as last seen (no losses)
// and the studio process it ran in.
function remember(job) {
  try {
    localStorage.setItem(STORED_SEEN, JSON.stringify({ instance: state.instance, job: { ...job, losses: [] } }));
  } catch (err) { /* private mode: nothing kept */ }
}

// A line for the user that stays until the next Start: what happened to the studio or to a run.
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
}

function setTitle(text) {
  document.title = text ? `${text} \u00b7 ArtiStyle studio` : "ArtiStyle studio";
}

// ---------------------------------------------------------------- seeds, the command line, settings from a PNG

// The seed of the last run this page showed (or of the newest result in the History).
function lastSeed() {
  if (state.lastJob && state.lastJob.seed != null) return state.lastJob.seed;
  const newest = Array.from(state.history.values()).sort((a, b) => b.job.created - a.job.created)[0];
  return newest && newest.job.seed != null ? newest.job.seed : null;
}

function randomSeed() {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

// Copy as command: the form as `artistyle PHOTO STYLE --option value ...` (the studio says it from the settings'
// schema), into the clipboard where the browser allows it, and shown below the buttons to copy by hand.
async function copyCommand() {
  showError("");
  const request = jobRequest();
  if (!request) return;
  let command;
  try {
    ({ command } = await api("POST", "/api/command", JSON.stringify(request), { "Content-Type": "application/json" }));
  } catch (err) {
    if (err.lost) studioLost(); else showError(err.message);
    return;
  }
  const box = $("command");
  box.value = command;
  $("command-row").hidden = false;
  let copied = false;
  try {
    await navigator.clipboard.writeText(command);
    copied = true;
  } catch (err) { /* not allowed here: the box below is selected instead */ }
  if (!copied) box.select();
  notice(copied ? "The command is copied: paste it in a terminal (uploads are named by their file names)."
    : "Copy the command below (it is selected); uploads are named by their file names.");
}

// An image just added that is a painting made by ArtiStyle: offer to put its settings and seed in the form.
function offerRecord(image) {
  if (!image || !image.record) return;
  state.offer = { record: image.record, name: image.name };
  const record = image.record;
  $("record-offer-text").textContent = `'${image.name}' was painted by ArtiStyle ${record.version}` +
    `${record.seed != null ? ` with seed ${record.seed}` : ""}: its settings can be put back in the form.`;
  $("record-offer").hidden = false;
}

function useRecord(record, name) {
  restoreForm({ settings: record.settings, given: record.given }, { seed: true });
  $("record-offer").hidden = true;
  state.offer = null;
  notice(`The settings${record.seed != null ? ` and seed (${record.seed})` : ""} of '${name}' are in the form; ` +
    "Start paints it again.");
}

// A file given for its settings (dropped on the settings, or chosen with "Settings from a painted PNG").
async function settingsFrom(file) {
  showError("");
  try {
    const image = await upload(file);
    if (image.record) useRecord(image.record, image.name);
    else showError(`'${file.name}' holds no ArtiStyle settings (only PNGs painted by ArtiStyle do)`);
  } catch (err) {
    if (err.lost) studioLost(); else showError(err.message);
  }
}

// A notification when a run ends, where the user asked for one and the browser allows it, and the page is
// not in front (else the page itself shows it).
function notify(job) {
  if (!$("notify").checked || !("Notification" in window) || Notification.permission !== "granted") return;
  if (!document.hidden && document.hasFocus()) return;
  const text = job.status === "done" ? `Done: ${job.output_width}x${job.output_height}, seed ${job.seed}.`
    : job.status === "failed" ? `The run failed: ${job.error}` : $("status").textContent;
  try {
    new Notification("ArtiStyle studio", { body: text, tag: "artistyle-run" });
  } catch (err) { /* a browser that only notifies from a service worker: nothing */ }
}

async function wantNotifications() {
  const box = $("notify");
  const refuse = (text) => {
    box.checked = false;
    notice(text);
  };
  if (box.checked) {
    if (!("Notification" in window)) {
      refuse("This browser cannot show notifications.");
      return;
    }
    const permission = Notification.permission === "default" ? await Notification.requestPermission()
      : Notification.permission;
    if (permission !== "granted") {
      refuse("The browser does not allow this page notifications; its site settings can allow them.");
      return;
    }
  }
  try { localStorage.setItem(STORED_NOTIFY, box.checked ? "1" : ""); } catch (err) { /* not kept */ }
}

// Ctrl+V with an image in the clipboard: it becomes the photo where that zone has the focus or there is no photo
// yet, else a style. Text pastes (into a box) are left alone.
function pasteImages(event) {
  const files = Array.from(event.clipboardData ? event.clipboardData.files : [])
    .filter((file) => file.type.startsWith("image/"));
  if (!files.length) return;
  event.preventDefault();
  const focus = document.activeElement;
  const near = (selector) => Boolean(focus && focus.closest && focus.closest(selector));
  const role = near("#style-drop, #style-list, #style-sample, #style-sample-add") ? "style"
    : near("#content-drop, #content-sample") || !state.content ? "content" : "style";
  const named = files.map((file, i) => new File([file], !file.name || file.name === "image.png"
    ? `pasted image${files.length > 1 ? ` ${i + 1}` : ""}.png` : file.name, { type: file.type }));
  addFiles(named, role).then((added) => {
    if (added) notice(`The pasted image is ${role === "content" ? "the photo" : "added to the styles"}.`);
  });
}

// A file dropped anywhere but on a drop zone would make the browser leave the page for it: a painted PNG gives
// its settings instead, and any other file is refused with a word on where to drop it.
function wirePageDrop() {
  document.addEventListener("dragover", (event) => {
    if (event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files")) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!event.dataTransfer || !event.dataTransfer.files.length || event.defaultPrevented) return;
    if (event.target instanceof Element && event.target.closest(".drop")) return;  // a drop zone's own
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file.type === "image/png") settingsFrom(file);
    else showError("drop a photo on the Photo zone and paintings on the Style zone (a PNG painted by ArtiStyle " +
      "elsewhere gives its settings)");
  });
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
  let seen = null;
  try { seen = JSON.parse(localStorage.getItem(STORED_SEEN) || "null"); } catch (err) { /* nothing kept */ }
  if (!seen || !seen.job || seen.job.id !== id) seen = null;
  try {
    const job = await api("GET", jobUrl(id));
    restoreForm(job, { seed: false });
    follow(job);
  } catch (err) {
    if (err.status !== 404) throw err;
    // Not in the studio any more: say why, and put back what the page still knows of it.
    forgetJob();
    if (!seen) {
      notice("The run this address named is no longer in the studio (restarted, or forgotten to make room).");
      return;
    }
    const job = seen.job;
    const what = ACTIVE.includes(job.status)
      ? (job.iteration ? `the run you were watching (at iteration ${job.iteration} of ${job.steps} when last seen)`
        : "the run you were watching") : "the result you were looking at";
    const missing = restoreKept(job);
    const lost = missing.length ? ` ${missing.join(", ")} ${missing.length > 1 ? "were uploads" : "was an upload"}` +
      " of that studio: add it again." : "";
    notice(seen.instance && seen.instance !== state.instance
      ? `The studio was restarted since this page last showed it, so ${what} is gone (the studio keeps runs and ` +
        `results in memory only). Its settings are back in the form.${lost}`
      : `${what.charAt(0).toUpperCase()}${what.slice(1)} is no longer in the studio: it keeps only the newest ` +
        `${maxHistory()} results. Its settings are back in the form.${lost}`);
  }
}

// The form from a job the studio no longer has: its settings, and those of its images every studio has (the
// samples). Returns the names of the others (uploads to a studio that is gone).
function restoreKept(job) {
  const images = job.images;
  const sample = (info) => info && info.id.startsWith("sample:");
  const missing = [images.content, ...images.styles, images.fine_style, ...images.masks]
    .filter((info) => info && !sample(info)).map((info) => `'${info.name}'`);
  const styles = images.styles.map((info, i) => [info, i]).filter(([info]) => sample(info));
  const settings = { ...job.settings };
  if (styles.length !== images.styles.length) {
    // The blend and brush scales belong to the styles kept.
    for (const name of ["style_blend", "style_scale"]) {
      const values = settings[name];
      if (Array.isArray(values) && values.length > 1) settings[name] = styles.map(([, i]) => values[i]);
    }
  }
  restoreForm({ ...job, settings, images: {
    content: sample(images.content) ? images.content : null,
    styles: styles.map(([info]) => info),
    fine_style: sample(images.fine_style) ? images.fine_style : null,
    masks: images.masks.filter(sample),
  } }, { seed: false });
  return missing;
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
  guardDownload($("download"), () => state.lastJob);
  $("seed-random").addEventListener("click", () => { $("seed").value = String(randomSeed()); });
  $("seed-last").addEventListener("click", () => {
    const seed = lastSeed();
    if (seed != null) $("seed").value = String(seed);
  });
  $("copy-command").addEventListener("click", copyCommand);
  $("record-use").addEventListener("click", () => { if (state.offer) useRecord(state.offer.record, state.offer.name); });
  $("record-dismiss").addEventListener("click", () => {
    $("record-offer").hidden = true;
    state.offer = null;
  });
  $("record-file").addEventListener("change", () => {
    const file = $("record-file").files[0];
    $("record-file").value = "";
    if (file) settingsFrom(file);
  });
  $("notify").addEventListener("change", wantNotifications);
  try {
    $("notify").checked = localStorage.getItem(STORED_NOTIFY) === "1" && "Notification" in window &&
      Notification.permission === "granted";
  } catch (err) { /* not kept */ }
  document.addEventListener("paste", pasteImages);
  wirePageDrop();
  for (const id of ["size", "steps"]) $(id).addEventListener("input", updateSchedule);
  $("init").addEventListener("change", updateSchedule);
  $("orphan-watch").addEventListener("click", async () => {
    try {
      const job = await api("GET", jobUrl($("orphan").dataset.id));
      restoreForm(job, { seed: false });
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
    state.instance = status.instance;
    $("device").textContent = `ArtiStyle ${status.version} on ${status.device}`;
    $("limits").textContent = `Images up to ${megabytes(limits.max_upload_bytes)} and ` +
      `${(limits.max_pixels / 1e6).toPrecision(3).replace(/\.?0+$/, "")} megapixels each; output up to ${limits.max_size} px.`;
    $("history-max").textContent = String(limits.max_history);
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
    if (err.lost) studioLost(); else showError(err.message);
  }
  updateButtons();
  drawLoss();
  pulseLoop();
  document.body.dataset.ready = "true";
}

init();
