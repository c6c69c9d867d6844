import { describe, expect, it } from "vitest";
import type { Field } from "./api";
import { buildBody, emptyValues, inputKind } from "./form";

function field(name: string, type: string, extra: Partial<Field> = {}): Field {
  return {
    name,
    json_name: name,
    type,
    repeated: false,
    required: false,
    secret: false,
    schema: {},
    ...extra,
  };
}

const fields = [
  field("param", "string"),
  field("password", "string", { secret: true }),
  field("lines", "int32"),
  field("interval", "double"),
  field("big", "uint64"),
  field("release", "bool"),
  field("level", "enum", { enum: ["LOW", "HIGH"] }),
  field("tags", "string", { repeated: true }),
  field("env", "map"),
];

describe("inputKind", () => {
  it("gives secrets a password input, enums a select, lists and maps JSON", () => {
    expect(fields.map(inputKind)).toEqual([
      "text",
      "password",
      "number",
      "number",
      "number",
      "checkbox",
      "select",
      "json",
      "json",
    ]);
  });
});

describe("buildBody", () => {
  it("sends only the fields set, each as its JSON type", () => {
    const values = {
      ...emptyValues(fields),
      param: "one",
      lines: 3, // as v-model gives a number input's value
      interval: "0.5",
      big: "18446744073709551615",
      release: true,
      level: "HIGH",
      tags: '["a","b"]',
    };
    expect(buildBody(fields, values)).toEqual({
      param: "one",
      lines: 3,
      interval: 0.5,
      big: "18446744073709551615",
      release: true,
      level: "HIGH",
      tags: ["a", "b"],
    });
  });

  it("names the field that cannot be read", () => {
    const values = { ...emptyValues(fields), lines: "2.5" };
    expect(() => buildBody(fields, values)).toThrow("lines: must be a whole number");
    expect(() => buildBody(fields, { ...emptyValues(fields), env: "{" })).toThrow(
      "env: is not valid JSON",
    );
    const required = [field("name", "string", { required: true })];
    expect(() => buildBody(required, emptyValues(required))).toThrow("name: is required");
  });
});
