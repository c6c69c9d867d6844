// The run form, made from a method's schema: which input each field gets,
// and how the typed values become the JSON body of POST /api/v1/run/{method}.
import type { Field } from "./api";

export type InputKind = "text" | "password" | "number" | "checkbox" | "select" | "json";

const INTEGERS = new Set([
  "int32",
  "sint32",
  "sfixed32",
  "uint32",
  "fixed32",
  "int64",
  "sint64",
  "sfixed64",
  "uint64",
  "fixed64",
]);

/** The input a field gets: secrets are passwords, enums selects, lists/maps/messages JSON. */
export function inputKind(field: Field): InputKind {
  if (field.repeated || field.type === "map" || field.type === "message") return "json";
  if (field.type === "enum") return "select";
  if (field.type === "bool") return "checkbox";
  if (INTEGERS.has(field.type) || field.type === "double" || field.type === "float") {
    return "number";
  }
  return field.secret ? "password" : "text";
}

// Vue's v-model hands number inputs back as numbers, the rest as strings.
export type FormValues = Record<string, string | number | boolean>;

/** Empty values for every field (unset fields are left out of the body). */
export function emptyValues(fields: Field[]): FormValues {
  return Object.fromEntries(
    fields.map((f) => [f.json_name, inputKind(f) === "checkbox" ? false : ""]),
  );
}

/** A field's value could not be read; `field` names it for the message. */
export class FormError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The request body: only fields the user set, each as its JSON type. */
export function buildBody(fields: Field[], values: FormValues): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const raw = values[field.json_name];
    const kind = inputKind(field);
    if (kind === "checkbox") {
      if (raw === true) body[field.json_name] = true;
      continue;
    }
    const text = raw === undefined || raw === false ? "" : String(raw).trim();
    if (text === "") {
      if (field.required) throw new FormError(field.name, "is required");
      continue;
    }
    if (kind === "json") {
      try {
        body[field.json_name] = JSON.parse(text);
      } catch {
        throw new FormError(field.name, "is not valid JSON");
      }
    } else if (kind === "number") {
      if (INTEGERS.has(field.type)) {
        if (!/^[+-]?\d+$/.test(text)) throw new FormError(field.name, "must be a whole number");
        // 64-bit integers travel as strings in the protobuf JSON mapping: no rounding.
        body[field.json_name] = field.type.endsWith("64") ? text : Number(text);
      } else {
        const number = Number(text);
        if (!Number.isFinite(number)) throw new FormError(field.name, "must be a number");
        body[field.json_name] = number;
      }
    } else {
      body[field.json_name] = String(raw); // text, password or an enum's name, as typed
    }
  }
  return body;
}
