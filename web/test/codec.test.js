// The codec in Node (node --test), on model files the Python side wrote with the onnx
// package into SEQADD_WEB_MODELS (tests/test_web.py does; run it with `make web-check`).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  ACCEPTED_FORMATS,
  ArtifactError,
  describeModel,
  pythonRepr,
  readMetadata,
  readQuery,
  splitLines,
} from "../codec.js";

const folder = process.env.SEQADD_WEB_MODELS;
if (!folder) throw new Error("SEQADD_WEB_MODELS is not set: run this test with make web-check");
const expected = JSON.parse(readFileSync(join(folder, "expected-codec.json"), "utf8"));
const bytesOf = (path) => new Uint8Array(readFileSync(join(folder, path)));

test("the shipped files describe themselves: format 2, the runtime's doubt threshold", () => {
  for (const [path, { digits, threshold }] of Object.entries(expected.shipped)) {
    const info = describeModel(bytesOf(path));
    assert.equal(info.format, 2);
    assert.equal(info.digits, digits);
    assert.equal(info.queryLength, 2 * digits + 1);
    assert.equal(info.answerLength, digits + 1);
    assert.equal(info.reverse, true);
    assert.equal(info.inputName, "query_ids");
    assert.equal(info.outputName, "char_probs");
    assert.equal(info.doubtThreshold, threshold);
  }
});

test("the metadata read from the bytes is what onnx wrote", () => {
  for (const [path, metadata] of Object.entries(expected.metadata)) {
    assert.deepEqual(readMetadata(bytesOf(path)), metadata);
  }
});

test("a copy with another doubt threshold gives that threshold, and its second look", () => {
  for (const [path, threshold] of Object.entries(expected.copies)) {
    const info = describeModel(bytesOf(path));
    assert.equal(info.format, 2);
    assert.equal(info.doubtThreshold, threshold);
    assert.equal(info.secondLook, true);
  }
});

test("a file it does not understand is refused with the Python runtime's reason", () => {
  assert.deepEqual(ACCEPTED_FORMATS, [2]);
  for (const [path, message] of Object.entries(expected.refused)) {
    assert.throws(
      () => describeModel(bytesOf(path)),
      (error) => error instanceof ArtifactError && error.message === message,
      path,
    );
    assert.ok(!message.includes("\n"));
  }
});

test("bytes that are not a protobuf are refused as not ONNX, not with a crash", () => {
  for (const text of ["\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "\x72\x05ab"]) {
    const bytes = Uint8Array.from(text, (char) => char.charCodeAt(0));
    assert.throws(() => describeModel(bytes), ArtifactError);
  }
  // An empty or foreign protobuf has no seqadd metadata.
  assert.throws(() => describeModel(new Uint8Array(0)), /no seqadd.format entry/);
});

test("the grammar and its messages match Python's read_query", () => {
  for (const { line, digits, reading } of expected.queries) {
    const got = readQuery(line, digits);
    const want = typeof reading === "string" ? { error: reading } : {
      a: BigInt(reading[0]),
      b: BigInt(reading[1]),
    };
    assert.deepEqual(got, want, JSON.stringify(line));
  }
});

test("repr and lines as Python has them", () => {
  for (const [text, repr] of expected.reprs) assert.equal(pythonRepr(text), repr);
  assert.deepEqual(splitLines("1+2\n3+4\n"), ["1+2", "3+4"]);
  assert.deepEqual(splitLines("1+2\n\n3+4"), ["1+2", "", "3+4"]);
  assert.deepEqual(splitLines(""), []);
});
