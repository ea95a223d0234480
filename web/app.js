// The page: load a shipped model with onnxruntime-web, answer the box's lines.
// Everything about the model comes from the file itself (codec.js reads its metadata).
import * as ort from "./ort/ort.wasm.min.mjs";
import { answerLines, ArtifactError, describeModel, splitLines } from "./codec.js";

// One thread by default: int8 answers then equal the Python runtime's bit for bit (more
// threads move some probabilities slightly). ?threads=N asks for more (cross-origin
// isolation, which `make web` provides, lets onnxruntime-web use them).
const params = new URLSearchParams(location.search);
ort.env.wasm.numThreads = Number(params.get("threads") || 1);
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
// Rows shown at most; every line is still answered.
const SHOWN_ROWS = 2000;

const $ = (id) => document.getElementById(id);
let current = null; // {name, file, info, session}

async function loadModel(name, file) {
  const started = performance.now();
  const url = `models/${encodeURIComponent(name)}/${encodeURIComponent(file)}`;
  const response = await fetch(url);
  if (!response.ok) throw new ArtifactError(`cannot load ${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const info = describeModel(bytes); // refuses a file it does not understand, before ORT
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (error) {
    throw new ArtifactError(`cannot load ${url} as an ONNX model: ${firstLine(error)}`);
  }
  if (session.inputNames.join() !== info.inputName) {
    throw new ArtifactError(`the graph's input should be '${info.inputName}' alone`);
  }
  if (!session.outputNames.includes(info.outputName)) {
    throw new ArtifactError(`the graph has no output '${info.outputName}'`);
  }
  current = { name, file, info, session };
  return { info, loadMs: performance.now() - started };
}

function firstLine(error) {
  return String(error?.message ?? error).trim().split("\n")[0];
}

// Runs the model on rows queries (ids: rows * queryLength int32); checks what comes out.
async function run(ids, rows) {
  const { info, session } = current;
  const input = new ort.Tensor("int32", ids, [rows, info.queryLength]);
  const outputs = await session.run({ [info.inputName]: input });
  const output = outputs[info.outputName];
  const expected = [rows, info.answerLength, info.vocabulary.length];
  if (output.dims.join() !== expected.join()) {
    throw new ArtifactError(
      `the model's output has shape [${output.dims}], the metadata says [${expected}]`,
    );
  }
  return output.data;
}

/** Answers to lines with the loaded model (see codec.js answerLines). */
async function answer(lines, rowsPerRun) {
  if (!current) throw new Error("no model loaded");
  return answerLines(lines, current.info, run, rowsPerRun);
}

function describe({ info }) {
  const doubt = `doubtful below ${info.doubtThreshold}`;
  return `${info.name}, ${current.file}: up to ${info.digits} digits, format ${info.format}, ${doubt}`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function show(results, elapsedMs) {
  const body = $("results").tBodies[0];
  body.replaceChildren();
  results.slice(0, SHOWN_ROWS).forEach((result, index) => {
    const row = body.insertRow();
    cell(row, String(index + 1), "number");
    cell(row, result.query, "query");
    if (result.error) {
      row.className = "invalid";
      cell(row, result.error, "answer");
      cell(row, "");
      cell(row, "");
      return;
    }
    cell(row, result.answer, "answer");
    cell(row, result.confidence.toFixed(6), "number");
    const badge = document.createElement("span");
    badge.className = `badge ${result.doubtful ? "doubtful" : "sure"}`;
    badge.textContent = result.doubtful ? "doubtful" : "sure";
    row.insertCell().append(badge);
  });
  $("results").hidden = results.length === 0;
  const invalid = results.filter((r) => r.error).length;
  const doubtful = results.filter((r) => r.doubtful).length;
  const shown = results.length > SHOWN_ROWS ? `, first ${SHOWN_ROWS} shown` : "";
  $("summary").textContent =
    `${results.length} lines, ${invalid} invalid, ${doubtful} doubtful, ` +
    `${elapsedMs.toFixed(1)} ms${shown}`;
}

async function answerBox() {
  const started = performance.now();
  const results = await answer(splitLines($("queries").value));
  show(results, performance.now() - started);
  return results;
}

function setStatus(text, failed = false) {
  $("status").textContent = text;
  $("status").className = failed ? "status failed" : "status";
}

async function choose(name, file) {
  $("answer").disabled = true;
  current = null;
  setStatus(`loading ${name}/${file}…`);
  try {
    const loaded = await loadModel(name, file);
    setStatus(`${describe(loaded)} (loaded in ${loaded.loadMs.toFixed(0)} ms)`);
    $("answer").disabled = false;
    return loaded;
  } catch (error) {
    setStatus(firstLine(error), true);
    throw error;
  }
}

async function start() {
  const listing = await (await fetch("models/models.json")).json();
  for (const { name, files } of listing) {
    for (const file of files) {
      $("model").add(new Option(`${name} · ${file}`, `${name}/${file}`));
    }
  }
  const wanted = params.get("model");
  if (wanted) $("model").value = wanted;
  $("model").addEventListener("change", () => {
    const [name, file] = $("model").value.split("/");
    choose(name, file).then(answerBox, () => {});
  });
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    answerBox().catch((error) => setStatus(firstLine(error), true));
  });
  const [name, file] = $("model").value.split("/");
  await choose(name, file);
  await answerBox();
}

// For the browser test (and the curious, from the console).
window.seqadd = {
  ready: start(),
  load: async (name, file) => {
    const { info, loadMs } = await choose(name, file);
    return { info, loadMs };
  },
  loadError: async (name, file) => choose(name, file).then(() => null, (error) => firstLine(error)),
  answer,
  answerBox,
  ortVersion: ort.env.versions?.web ?? null,
  crossOriginIsolated: window.crossOriginIsolated,
};
