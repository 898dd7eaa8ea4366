// cxrkit serve page: plain JavaScript, no build step, nothing loaded from elsewhere.
// Every string from the server or the user is inserted with textContent, never as HTML.
"use strict";

const state = { token: sessionStorage.getItem("cxrkit-token") || "", files: [], results: [] };
const $ = (id) => document.getElementById(id);

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function readError(response) {
  try {
    const body = await response.json();
    let text = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    if (body.accepted) text += " Accepted: " + body.accepted.join(", ") + ".";
    return response.status + ": " + text;
  } catch (_err) {
    return response.status + " " + response.statusText;
  }
}

async function loadModel() {
  const response = await fetch("/v1/model", { headers: headers() });
  if (response.status === 401) {
    $("token-box").hidden = false;
    $("model-name").textContent = "(token needed)";
    return;
  }
  if (!response.ok) {
    showError(await readError(response));
    return;
  }
  $("token-box").hidden = true;
  const card = await response.json();
  $("model-name").textContent = card.name;
  $("model-classes").textContent = card.classes.join(" vs ") + " · " + card.architecture +
    " · " + card.preprocessing.input_size + " px";
  $("card-text").textContent = card.model_card || "This model folder has no MODEL_CARD.md.";
  const details = Object.assign({}, card);
  delete details.model_card;
  $("card-json").textContent = JSON.stringify(details, null, 2);
}

function percent(p) {
  return (100 * p).toFixed(1) + "%";
}

function render() {
  const holder = $("results");
  holder.replaceChildren();
  const overlay = $("overlay").checked;
  state.results.forEach((result, i) => {
    const node = $("result-template").content.firstElementChild.cloneNode(true);
    node.dataset.index = String(i);
    node.querySelector(".filename").textContent = result.filename;
    const img = node.querySelector(".picture");
    const file = state.files[i];
    const original = result.preview ||
      (file && result.type !== "dicom" ? URL.createObjectURL(file) : "");
    const showOverlay = overlay && result.gradcam;
    img.src = showOverlay ? result.gradcam : original;
    node.querySelector(".caption").textContent =
      (showOverlay ? "Grad-CAM of " + Object.keys(result.probabilities)[1] + " · " : "") +
      result.type.toUpperCase() + " " + result.width + "x" + result.height;
    const d = result.decision;
    node.querySelector(".decision").textContent = d
      ? "Decision: " + d.label + " (operating point p ≥ " + d.threshold.toFixed(3) +
        (d.name ? ", " + d.name : "") + ")"
      : "Most likely: " + result.prediction + " (the model has no operating point)";
    const probs = node.querySelector(".probs");
    for (const [name, p] of Object.entries(result.probabilities)) {
      const li = document.createElement("li");
      li.dataset.class = name;
      const label = document.createElement("div");
      label.className = "prob-label";
      const n = document.createElement("span");
      n.textContent = "p(" + name + ")";
      const v = document.createElement("span");
      v.className = "prob-value";
      v.textContent = p.toFixed(4);
      label.append(n, v);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = percent(p);
      bar.append(fill);
      li.append(label, bar);
      probs.append(li);
    }
    const warnings = node.querySelector(".warnings");
    if (result.warnings.length === 0) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "No input warnings.";
      warnings.append(li);
    }
    for (const w of result.warnings) {
      const li = document.createElement("li");
      li.dataset.code = w.code;
      li.textContent = w.message;
      warnings.append(li);
    }
    holder.append(node);
  });
}

async function predict(files, gradcam) {
  if (!files.length) return;
  showError("");
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const anyDicom = files.some((f) => !/\.(png|jpe?g)$/i.test(f.name));
  const query = "?gradcam=" + (gradcam ? "true" : "false") + "&preview=" + anyDicom;
  $("status").textContent = "Predicting " + files.length + " image" +
    (files.length > 1 ? "s" : "") + "…";
  let response;
  try {
    response = await fetch("/v1/predict" + query, { method: "POST", body: form,
                                                    headers: headers() });
  } catch (err) {
    $("status").textContent = "";
    showError("The server could not be reached (" + err + ").");
    return;
  }
  if (response.status === 401) {
    $("token-box").hidden = false;
  }
  if (!response.ok) {
    $("status").textContent = "";
    showError(await readError(response));
    return;
  }
  const body = await response.json();
  state.files = files;
  state.results = body.results;
  $("status").textContent = "Done in " + body.elapsed_ms.toFixed(0) + " ms.";
  render();
}

function setup() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    predict(Array.from(e.dataTransfer.files), $("overlay").checked);
  });
  $("file").addEventListener("change", (e) => {
    predict(Array.from(e.target.files), $("overlay").checked);
  });
  $("overlay").addEventListener("change", () => {
    const missing = $("overlay").checked && state.results.some((r) => !r.gradcam);
    if (missing) predict(state.files, true); else render();
  });
  $("card-button").addEventListener("click", () => $("card").showModal());
  $("token-save").addEventListener("click", () => {
    state.token = $("token").value;
    sessionStorage.setItem("cxrkit-token", state.token);
    loadModel();
  });
  loadModel();
}

document.addEventListener("DOMContentLoaded", setup);
