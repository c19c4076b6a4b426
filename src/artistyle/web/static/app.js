// ArtiStyle studio: the page's logic. No libraries, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["queued", "running", "cancelling"];

const state = {
  limits: null,
  content: null,          // {id, name, url}
  styles: [],             // [{id, name, url, weight, scale}]
  fineStyle: null,        // {id, name, url}: its fine brush texture replaces the styles' own
  masks: [],              // [{id, name, url}]: one label image or one mask per style
  job: null,              // id of the job this tab follows
  events: null,           // its EventSource
  losses: [],
  steps: 0,
  shownPreview: 0,
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
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
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

function setContent(image) {
  state.content = image;
  const thumb = $("content-thumb");
  thumb.src = image.url;
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
  state.styles.push({ ...image, weight: 1, scale: 1 });
  renderStyles();
}

function renderStyles() {
  const list = $("style-list");
  list.replaceChildren();
  state.styles.forEach((style, index) => {
    const item = thumbnailItem(style, style.name, "style", () => {
      state.styles.splice(index, 1);
      renderStyles();
    });
    const knobs = document.createElement("span");
    knobs.className = "knobs";
    knobs.append(knob("weight", style, "weight", 0, "any"), knob("scale", style, "scale", 0.05, "0.05"));
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
  remove.title = `Remove this ${what}`;
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
    list.append(thumbnailItem(image, `${image.name} (${image.width}x${image.height})`, what, () => onRemove(index)));
  });
}

function renderExtras() {
  renderFileList("fine-style-list", state.fineStyle ? [state.fineStyle] : [], "fine style", () => {
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

function knob(label, style, key, min, step) {
  const wrap = document.createElement("label");
  const input = document.createElement("input");
  input.type = "number";
  input.min = String(min);
  input.step = step;
  input.value = String(style[key]);
  input.className = `style-${key}`;
  input.addEventListener("input", () => { style[key] = input.value; });
  wrap.append(`${label} `, input);
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

function wireDrop(zoneId, inputId, role) {
  const zone = $(zoneId);
  const input = $(inputId);
  input.addEventListener("change", () => {
    addFiles(Array.from(input.files), role);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(Array.from(event.dataTransfer.files), role);
  });
}

async function loadSamples() {
  const samples = await api("GET", "/api/samples");
  for (const selectId of ["content-sample", "style-sample"]) {
    const select = $(selectId);
    for (const sample of samples) {
      const option = document.createElement("option");
      option.value = sample.id;
      option.textContent = sample.name.replace(/\.[a-z]+$/i, "").replace(/_/g, " ");
      select.append(option);
    }
    select.addEventListener("change", () => {
      const sample = samples.find((s) => s.id === select.value);
      select.value = "";
      if (!sample) return;
      const image = { id: sample.id, name: sample.name, width: sample.width, height: sample.height,
                      url: `/api/samples/${encodeURIComponent(sample.id)}` };
      showError("");
      if (selectId === "content-sample") setContent(image); else addStyle(image);
    });
  }
}

// ---------------------------------------------------------------- settings

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function layers(id) {
  return $(id).value.split(",").map((s) => s.trim()).filter((s) => s);
}

function collectSettings() {
  const settings = {
    size: numberOrNull("size"),
    steps: numberOrNull("steps"),
    style_weight: Number(formatWeight(Number($("style-strength").value))),
    preserve_color: $("preserve-color").value || null,
    original_colors: $("original-colors").checked,
    seed: numberOrNull("seed"),
    padding: $("padding").value,
    content_weight: numberOrNull("content-weight"),
    tv_weight: numberOrNull("tv-weight"),
    color_match: $("color-match").value,
    init: $("init").value,
    optimizer: $("optimizer").value,
    pooling: $("pooling").value,
    scales: numberOrNull("scales"),
    style_anchor: numberOrNull("style-anchor"),
    content_layers: layers("content-layers"),
    style_layers: layers("style-layers"),
  };
  for (const key of ["steps", "content_weight", "tv_weight", "style_anchor"]) {
    if (settings[key] === null) delete settings[key];   // the library's default
  }
  if (state.styles.length > 1) settings.style_blend = state.styles.map((s) => Number(s.weight));
  if (state.styles.some((s) => Number(s.scale) !== 1)) settings.style_scale = state.styles.map((s) => Number(s.scale));
  return settings;
}

// ---------------------------------------------------------------- jobs

async function start() {
  showError("");
  if (!state.content || !state.styles.length) {
    showError("choose a photo and at least one style first");
    return;
  }
  const body = JSON.stringify({
    content: state.content.id,
    styles: state.styles.map((s) => s.id),
    settings: collectSettings(),
    ...(state.fineStyle ? { fine_style: state.fineStyle.id } : {}),
    ...(state.masks.length ? { masks: state.masks.map((m) => m.id) } : {}),
  });
  $("start").disabled = true;
  try {
    const job = await api("POST", "/api/jobs", body, { "Content-Type": "application/json" });
    follow(job);
  } catch (err) {
    showError(err.message);
    updateButtons();
  }
}

function follow(job) {
  if (state.events) state.events.close();
  state.job = job.id;
  state.losses = [];
  state.shownPreview = 0;
  $("preview").hidden = true;
  $("preview-empty").hidden = false;
  setDownload(null);
  show(job);
  const events = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
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
    show(await api("POST", `/api/jobs/${encodeURIComponent(state.job)}/cancel`));
  } catch (err) {
    showError(err.message);
  }
}

function show(job) {
  if (job.id !== state.job) return;
  const status = $("status");
  status.dataset.status = job.status;
  status.dataset.iteration = String(job.iteration);
  state.steps = job.steps;
  if (job.losses_from !== undefined) {
    state.losses.length = Math.min(state.losses.length, job.losses_from);
    state.losses.push(...job.losses);
  }
  const where = job.width ? `${job.width}x${job.height}` + (job.scales > 1 ? ` (scale ${job.scale + 1} of ${job.scales})` : "") : "";
  const seconds = `${job.seconds.toFixed(1)} s`;
  switch (job.status) {
    case "queued":
      status.textContent = `Waiting in the queue: place ${job.position} ` +
        `(${job.position === 1 ? "next, after the run in progress" : `${job.position - 1} more before it`}).`;
      break;
    case "running":
      status.textContent = job.iteration
        ? `Painting ${where}: iteration ${job.iteration} of ${job.steps}, loss ${formatLoss(job.loss)}, ${seconds}.`
        : "Preparing the run\u2026";
      break;
    case "cancelling":
      status.textContent = "Cancelling\u2026";
      break;
    case "done":
      status.textContent = `Done: ${job.output_width}x${job.output_height}, ${job.iteration} iterations in ${seconds} (seed ${job.seed}).`;
      break;
    case "cancelled":
      status.textContent = `Cancelled${job.iteration ? ` at iteration ${job.iteration} of ${job.steps}` : ""}.` +
        (job.result ? " The image so far can be downloaded." : "");
      break;
    case "failed":
      status.textContent = "The run failed.";
      showError(job.error);
      break;
    default:
      status.textContent = job.status;
  }
  if (job.preview > state.shownPreview) {
    state.shownPreview = job.preview;
    const preview = $("preview");
    preview.src = `/api/jobs/${encodeURIComponent(job.id)}/preview.jpg?v=${job.preview}`;
    preview.dataset.version = String(job.preview);
    preview.hidden = false;
    $("preview-empty").hidden = true;
  }
  setDownload(job.result ? job : null);
  if (!ACTIVE.includes(job.status) && state.events) {
    state.events.close();
    state.events = null;
  }
  updateButtons();
  drawLoss();
}

function setDownload(job) {
  const link = $("download");
  if (job) {
    link.href = `/api/jobs/${encodeURIComponent(job.id)}/result.png`;
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
  const active = ACTIVE.includes($("status").dataset.status);
  $("start").disabled = active || !state.content || !state.styles.length;
  $("cancel").disabled = !active || $("status").dataset.status === "cancelling";
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
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const values = state.losses.filter((v) => v > 0 && Number.isFinite(v)).map(Math.log10);
  canvas.dataset.points = String(state.losses.length);
  const left = 46, right = 10, top = 10, bottom = 24;
  const plotW = width - left - right, plotH = height - top - bottom;
  ctx.strokeStyle = "#ddd6c8";
  ctx.fillStyle = "#6f6a60";
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
  ctx.strokeStyle = "#2c5d8f";
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
}

// ---------------------------------------------------------------- start-up

async function init() {
  wireDrop("content-drop", "content-file", "content");
  wireDrop("style-drop", "style-file", "style");
  wireExtra("fine-style-file", "fine");
  wireExtra("mask-files", "mask");
  const strength = $("style-strength");
  strength.addEventListener("input", () => { $("style-strength-value").textContent = formatWeight(Number(strength.value)); });
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
  window.addEventListener("resize", drawLoss);
  try {
    const status = await api("GET", "/api/status");
    const { limits, defaults } = status;
    state.limits = limits;
    $("device").textContent = `ArtiStyle ${status.version} on ${status.device}`;
    $("limits").textContent = `Images up to ${megabytes(limits.max_upload_bytes)} and ` +
      `${(limits.max_pixels / 1e6).toPrecision(3).replace(/\.?0+$/, "")} megapixels each; output up to ${limits.max_size} px.`;
    $("size").value = defaults.size;
    $("size").max = limits.max_size;
    $("steps").value = defaults.steps;
    $("steps").max = limits.max_steps;
    strength.value = Math.log10(defaults.style_weight);
    $("style-strength-value").textContent = formatWeight(Number(strength.value));
    $("content-weight").value = defaults.content_weight;
    $("tv-weight").value = defaults.tv_weight;
    $("padding").value = defaults.padding;
    $("pooling").value = defaults.pooling;
    $("optimizer").value = defaults.optimizer;
    $("color-match").value = defaults.color_match;
    $("init").value = defaults.init;
    $("style-anchor").value = defaults.style_anchor;
    $("content-layers").value = defaults.content_layers.join(",");
    $("style-layers").value = defaults.style_layers.join(",");
    await loadSamples();
  } catch (err) {
    showError(err.message);
  }
  updateButtons();
  drawLoss();
  document.body.dataset.ready = "true";
}

init();
