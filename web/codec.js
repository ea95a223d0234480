// The seqadd codec in JavaScript, for the page and for Node: what a seqadd ONNX file says
// about itself (read from the file's own bytes), the grammar of a query with its messages,
// and how queries become token ids and probabilities become answers.
//
// It mirrors the Python runtime: seqadd_runtime/artifact.py (the metadata contract),
// parse.py (read_query: the grammar and its reasons), codec.py (padding, reversal, ids) and
// engine.py (confidence). The browser test compares every answer and message with Python's.

// Contract versions this codec reads: the Python runtime's (artifact.py's FORMAT_VERSION).
export const ACCEPTED_FORMATS = [2];
export const PREFIX = "seqadd.";
// The one vocabulary the Python codec reads: the sorted characters of "0123456789+ ".
export const VOCABULARY = " +0123456789";
// Lines longer than this (in UTF-8 bytes) are refused whole, as parse.py does.
export const MAX_LINE_BYTES = 256;
// Rows per model run, as engine.py's MODEL_ROWS: int8 answers are bit-equal to Python's only
// when runs hold the same rows.
export const MODEL_ROWS = 128;

const FIELD_KINDS = {
  name: "string",
  vocabulary: "string",
  digits: "integer",
  query_length: "integer",
  answer_length: "integer",
  reverse: "boolean",
  input_name: "string",
  output_name: "string",
  architecture: "object",
  provenance: "object",
  doubt: "object",
  probes: "object",
};
const OPTIONAL_FIELDS = new Set(["architecture", "provenance", "probes"]);
// The most probe queries a file may hold (artifact.py's MAX_PROBES).
const MAX_PROBES = 256;
const KIND_NAMES = {
  string: "a string",
  integer: "an integer",
  boolean: "true or false",
  object: "an object",
};

/** The file is not a seqadd model this codec can read; the message says why. */
export class ArtifactError extends Error {
  constructor(message) {
    super(message);
    this.name = "ArtifactError";
  }
}

// ---------------------------------------------------------------------------------------
// A minimal protobuf reader: just enough of ModelProto to find metadata_props (field 14),
// repeated StringStringEntryProto {key = 1, value = 2}. Every other field is skipped.

function readVarint(bytes, state) {
  let value = 0;
  let scale = 1;
  for (let shift = 0; shift < 64; shift += 7) {
    if (state.at >= state.end) throw new ArtifactError("not an ONNX model: truncated protobuf");
    const byte = bytes[state.at++];
    value += (byte & 0x7f) * scale; // exact up to 2**53: lengths and tags are far smaller
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw new ArtifactError("not an ONNX model: malformed protobuf varint");
}

// Calls visit(field, wireType, bytes, start, end) for each length-delimited field of the
// message in bytes[start:end]; other wire types are skipped.
function eachField(bytes, start, end, visit) {
  const state = { at: start, end };
  while (state.at < end) {
    const tag = readVarint(bytes, state);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) throw new ArtifactError("not an ONNX model: protobuf field number 0");
    if (wireType === 0) {
      readVarint(bytes, state);
    } else if (wireType === 1) {
      state.at += 8;
    } else if (wireType === 5) {
      state.at += 4;
    } else if (wireType === 2) {
      const length = readVarint(bytes, state);
      const from = state.at;
      state.at += length;
      if (state.at > end) throw new ArtifactError("not an ONNX model: truncated protobuf");
      visit(field, bytes, from, state.at);
    } else {
      throw new ArtifactError(`not an ONNX model: unsupported protobuf wire type ${wireType}`);
    }
    if (state.at > end) throw new ArtifactError("not an ONNX model: truncated protobuf");
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The ONNX model's metadata_props as a plain object {key: value}. */
export function readMetadata(modelBytes) {
  const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
  const metadata = {};
  eachField(bytes, 0, bytes.length, (field, data, start, end) => {
    if (field !== 14) return;
    let key = "";
    let value = "";
    eachField(data, start, end, (entryField, entryData, from, to) => {
      let text;
      try {
        text = utf8.decode(entryData.subarray(from, to));
      } catch {
        throw new ArtifactError("not an ONNX model: a metadata entry is not UTF-8 text");
      }
      if (entryField === 1) key = text;
      else if (entryField === 2) value = text;
    });
    metadata[key] = value;
  });
  return metadata;
}

// ---------------------------------------------------------------------------------------
// The contract (artifact.py's ModelInfo.from_metadata, Doubt.from_json, Probes.from_json).

function kindOf(value) {
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  if (value === null) return "NoneType";
  if (Array.isArray(value)) return "list";
  return "object";
}

// Python's type names, so the messages read as the Python runtime's do.
const PYTHON_TYPE_NAMES = {
  string: "str",
  boolean: "bool",
  integer: "int",
  float: "float",
  NoneType: "NoneType",
  list: "list",
  object: "dict",
};

/**
 * The model's description from its metadata: {name, digits, reverse, vocabulary,
 * queryLength, answerLength, inputName, outputName, format, doubtThreshold}. Throws
 * ArtifactError with one clear reason (the Python runtime's words) for a file it does not
 * understand.
 */
export function modelInfo(metadata) {
  if (!(PREFIX + "format" in metadata)) {
    throw new ArtifactError("not a seqadd model: its ONNX metadata has no seqadd.format entry");
  }
  const values = {};
  for (const [key, text] of Object.entries(metadata)) {
    if (!key.startsWith(PREFIX)) continue;
    try {
      values[key.slice(PREFIX.length)] = JSON.parse(text);
    } catch {
      throw new ArtifactError(`metadata entry ${key} is not valid JSON`);
    }
  }
  if (!ACCEPTED_FORMATS.includes(values.format)) {
    const accepted = ACCEPTED_FORMATS.join(" or ");
    throw new ArtifactError(
      `seqadd model format ${pythonStr(values.format)} is not supported by this runtime ` +
        `(it reads format ${accepted}): export the model again with seqadd-export`,
    );
  }
  for (const [key, kind] of Object.entries(FIELD_KINDS)) {
    if (!(key in values)) {
      if (OPTIONAL_FIELDS.has(key)) continue;
      throw new ArtifactError(`seqadd metadata lacks ${PREFIX + key}`);
    }
    if (kindOf(values[key]) !== kind) {
      throw new ArtifactError(
        `seqadd metadata entry ${PREFIX + key} should be ${KIND_NAMES[kind]}, not ` +
          PYTHON_TYPE_NAMES[kindOf(values[key])],
      );
    }
  }
  const digits = values.digits;
  if (!(digits >= 1 && digits <= 15)) {
    throw new ArtifactError(
      `seqadd metadata is inconsistent: digits must be between 1 and 15, not ${digits}`,
    );
  }
  if (values.vocabulary !== VOCABULARY) {
    throw new ArtifactError(
      `seqadd metadata is inconsistent: unsupported vocabulary ` +
        `${pythonRepr(values.vocabulary)}: this codec reads ${pythonRepr(VOCABULARY)}`,
    );
  }
  if (values.query_length !== 2 * digits + 1 || values.answer_length !== digits + 1) {
    throw new ArtifactError("seqadd metadata is inconsistent: lengths do not match digits");
  }
  const { doubtThreshold, secondLook } = doubtFrom(values.doubt);
  if ("probes" in values) checkProbes(values.probes);
  return {
    format: values.format,
    name: values.name,
    vocabulary: values.vocabulary,
    digits,
    reverse: values.reverse,
    queryLength: values.query_length,
    answerLength: values.answer_length,
    inputName: values.input_name,
    outputName: values.output_name,
    doubtThreshold,
    secondLook,
  };
}

const isNumber = (value) => typeof value === "number";

// Doubt.from_json: the threshold below which an answer is doubtful, and whether an answer
// below it is asked again as b+a.
function doubtFrom(doubt) {
  const threshold = doubt.threshold;
  if (!isNumber(threshold) || !(threshold >= 0 && threshold <= 1)) {
    throw new ArtifactError(`${PREFIX}doubt should hold a threshold from 0 to 1`);
  }
  if ("calibration" in doubt && kindOf(doubt.calibration) !== "object") {
    throw new ArtifactError(`${PREFIX}doubt's calibration should be an object`);
  }
  const secondLook = doubt.second_look ?? false;
  if (typeof secondLook !== "boolean") {
    throw new ArtifactError(`${PREFIX}doubt's second_look should be true or false`);
  }
  return { doubtThreshold: threshold, secondLook };
}

// Probes.from_json's checks. The page does not run the probes: the Python runtime's
// self-check is its gate, and the browser test compares every answer with Python's.
function checkProbes(probes) {
  const { queries, answers, confidence, tolerance, tolerances = {} } = probes;
  const lists = [queries, answers, confidence];
  if (
    !lists.every(Array.isArray) ||
    !(queries.length > 0 && queries.length <= MAX_PROBES) ||
    new Set(lists.map((items) => items.length)).size !== 1 ||
    ![...queries, ...answers].every((item) => typeof item === "string") ||
    !confidence.every(isNumber) ||
    !isNumber(tolerance) ||
    tolerances === null ||
    typeof tolerances !== "object" ||
    Array.isArray(tolerances) ||
    !Object.values(tolerances).every(isNumber)
  ) {
    throw new ArtifactError(
      `${PREFIX}probes should hold 1 to ${MAX_PROBES} queries with as many answers ` +
        "and confidences, and a tolerance",
    );
  }
}

// A JSON value as Python's str() writes it, for messages that quote one.
function pythonStr(value) {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** readMetadata then modelInfo: the description of a model file's bytes. */
export function describeModel(modelBytes) {
  return modelInfo(readMetadata(modelBytes));
}

// ---------------------------------------------------------------------------------------
// The grammar (parse.py's read_query), with its messages word for word.

const WHITESPACE = " \t\r";

function stripWhitespace(text) {
  let start = 0;
  let end = text.length;
  while (start < end && WHITESPACE.includes(text[start])) start++;
  while (end > start && WHITESPACE.includes(text[end - 1])) end--;
  return text.slice(start, end);
}

// Characters Python's str.isprintable() refuses: control, format, surrogate, private use,
// unassigned, and separators other than the ASCII space.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function escapeCodePoint(code) {
  if (code < 0x100) return "\\x" + code.toString(16).padStart(2, "0");
  if (code < 0x10000) return "\\u" + code.toString(16).padStart(4, "0");
  return "\\U" + code.toString(16).padStart(8, "0");
}

/** A string as Python's repr() writes it (the runtime's messages quote with repr). */
export function pythonRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0);
    if (char === quote || char === "\\") out += "\\" + char;
    else if (char === "\t") out += "\\t";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char !== " " && UNPRINTABLE.test(char)) out += escapeCodePoint(code);
    else out += char;
  }
  return out + quote;
}

function hasLoneSurrogate(text) {
  return /\p{Cs}/u.test(text);
}

const utf8Encoder = new TextEncoder();

/**
 * One line (without its newline) read as a query: {a, b} (BigInt operands, exact at any
 * length) for a valid line, or {error} naming why it is not one, in the runtime's words.
 */
export function readQuery(line, digits) {
  if (utf8Encoder.encode(line).length > MAX_LINE_BYTES) {
    return { error: `line is longer than ${MAX_LINE_BYTES} bytes` };
  }
  if (hasLoneSurrogate(line)) return { error: "not valid UTF-8 text" };
  const stripped = stripWhitespace(line);
  if (!stripped) return { error: "empty line: expected a query like 535+61" };
  for (const char of stripped) {
    if (char.codePointAt(0) > 0x7f) return { error: `non-ASCII character ${pythonRepr(char)}` };
  }
  if (stripped.includes("-")) {
    return { error: "negative numbers and subtraction are not supported: use non-negative A+B" };
  }
  for (const char of stripped) {
    if (!"0123456789+ \t\r".includes(char)) {
      return { error: `unexpected character ${pythonRepr(char)}: expected a query like 535+61` };
    }
  }
  const pluses = stripped.split("+").length - 1;
  if (pluses === 0) return { error: "no '+': expected two numbers joined by '+'" };
  if (pluses > 1) return { error: `${pluses} '+' signs: expected exactly one` };
  const operands = [];
  const sides = ["before", "after"];
  const parts = stripped.split("+");
  for (let index = 0; index < 2; index++) {
    const operand = stripWhitespace(parts[index]);
    if (!operand) return { error: `missing number ${sides[index]} '+'` };
    if (!/^[0-9]+$/.test(operand)) {
      return { error: `white space inside the number ${pythonRepr(operand)}` };
    }
    const significant = operand.replace(/^0+/, "").length || 1;
    if (significant > digits) {
      return {
        error:
          `operand ${pythonRepr(operand)} has ${significant} digits; ` +
          `this model handles at most ${digits}`,
      };
    }
    operands.push(BigInt(operand));
  }
  return { a: operands[0], b: operands[1] };
}

// ---------------------------------------------------------------------------------------
// Encoding and decoding (codec.py).

/** Token ids (rows * queryLength, int32) of valid queries {a, b}: "a+b" padded with
 *  spaces to queryLength characters, reversed when the model reads queries reversed. */
export function encodeQueries(queries, info) {
  const width = info.queryLength;
  const ids = new Int32Array(queries.length * width);
  queries.forEach(({ a, b }, row) => {
    const text = `${a}+${b}`.padEnd(width, " ");
    for (let column = 0; column < width; column++) {
      const char = text[info.reverse ? width - 1 - column : column];
      ids[row * width + column] = VOCABULARY.indexOf(char);
    }
  });
  return ids;
}

/**
 * Answers and confidences from the model's probabilities (rows, answerLength, vocabulary):
 * each character is its most probable token (the first on a tie, as numpy's argmax), the
 * answer is unpadded; confidence is the product of each character's top probability,
 * multiplied in float32 as numpy does.
 */
export function decodeAnswers(probabilities, rows, info) {
  const vocabulary = info.vocabulary.length;
  const answers = [];
  for (let row = 0; row < rows; row++) {
    let text = "";
    let confidence = 1;
    for (let position = 0; position < info.answerLength; position++) {
      const base = (row * info.answerLength + position) * vocabulary;
      let best = 0;
      for (let id = 1; id < vocabulary; id++) {
        if (probabilities[base + id] > probabilities[base + best]) best = id;
      }
      text += info.vocabulary[best];
      confidence = Math.fround(confidence * probabilities[base + best]);
    }
    answers.push({ answer: stripSpaces(text), confidence });
  }
  return answers;
}

// Python's bytes.strip() on an answer: the model's characters hold no other white space.
function stripSpaces(text) {
  return text.replace(/^ +| +$/g, "");
}

/** Whether an answer of this confidence is doubtful: below the model's threshold, compared
 *  in float32 as numpy compares the runtime's float32 confidences with it. */
export function isDoubtful(confidence, info) {
  return confidence < Math.fround(info.doubtThreshold);
}

/** A text's lines as a file's: split at "\n", a final newline ends the last line. */
export function splitLines(text) {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Answer lines with a model: run(ids: Int32Array, rows) -> Promise<Float32Array> runs the
 * model on at most MODEL_ROWS rows. Returns, per line, {query, answer, confidence, doubtful,
 * error}; an invalid line has answer and confidence null and its reason in error.
 */
export async function answerLines(lines, info, run, rowsPerRun = MODEL_ROWS) {
  const results = lines.map((line) => {
    const reading = readQuery(line, info.digits);
    return { query: line, reading };
  });
  const valid = results.filter((result) => !result.reading.error);
  await answerQueries(valid, info, run, rowsPerRun, (reading) => reading);
  if (info.secondLook) {
    // Engine.predict: an answer below the threshold is asked again as b+a, and the more
    // confident of the two is kept (a tie keeps the first).
    const unsure = valid.filter((result) => isDoubtful(result.confidence, info));
    const swapped = unsure.map(() => ({}));
    await answerQueries(swapped, info, run, rowsPerRun, (_, index) => ({
      a: unsure[index].reading.b,
      b: unsure[index].reading.a,
    }));
    unsure.forEach((result, index) => {
      if (swapped[index].confidence > result.confidence) {
        result.answer = swapped[index].answer;
        result.confidence = swapped[index].confidence;
      }
    });
  }
  return results.map(({ query, reading, answer, confidence }) =>
    reading.error
      ? { query, answer: null, confidence: null, doubtful: null, error: reading.error }
      : { query, answer, confidence, doubtful: isDoubtful(confidence, info), error: null },
  );
}

// Runs the model on the queries of entries, at most rowsPerRun rows a run, and puts into
// each entry its answer and confidence; queryOf(entry.reading, index) -> {a, b}.
async function answerQueries(entries, info, run, rowsPerRun, queryOf) {
  for (let start = 0; start < entries.length; start += rowsPerRun) {
    const chunk = entries.slice(start, start + rowsPerRun);
    const ids = encodeQueries(
      chunk.map((entry, index) => queryOf(entry.reading, start + index)),
      info,
    );
    const probabilities = await run(ids, chunk.length);
    decodeAnswers(probabilities, chunk.length, info).forEach((decoded, index) => {
      Object.assign(chunk[index], decoded);
    });
  }
}
