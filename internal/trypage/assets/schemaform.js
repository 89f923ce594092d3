// A form generated from a tool's inputSchema (JSON Schema): a labelled field
// per property — text, number, checkbox or a choice for an enum — and a JSON
// text area for anything else (objects, arrays, unions). read() turns the
// fields back into the arguments object, or says what is wrong with which.
import { el } from "./exchanges.js";

/** kind picks the control for one property's schema. */
export function kind(schema) {
  if (Array.isArray(schema?.enum) && schema.enum.length > 0) return "enum";
  switch (schema?.type) {
    case "string": return "string";
    case "number": return "number";
    case "integer": return "integer";
    case "boolean": return "boolean";
    default: return "json";
  }
}

const INPUT_TYPES = { email: "email", uri: "url", date: "date", "date-time": "datetime-local" };

/**
 * buildForm fills container with the fields of schema and returns
 * { read() → { args } | { errors: [{ name, message }] } }.
 */
export function buildForm(container, schema, idPrefix = "arg") {
  const props = schema?.properties ?? {};
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  const fields = [];
  if (Object.keys(props).length === 0) {
    container.append(el("p", "muted", "This tool takes no arguments."));
  }
  let n = 0;
  for (const [name, prop] of Object.entries(props)) {
    const id = `${idPrefix}-${n++}`;
    const k = kind(prop);
    const isRequired = required.has(name);
    const wrap = el("div", "field");
    const label = el("label", "", prop?.title ? `${prop.title} (${name})` : name);
    label.htmlFor = id;
    if (isRequired) label.append(" ", el("span", "required", "required"));
    const help = el("p", "muted", [prop?.description, k === "json" ? "Enter JSON." : ""].filter(Boolean).join(" "));
    help.id = `${id}-help`;
    const err = el("p", "field-error", "");
    err.id = `${id}-error`;
    err.hidden = true;
    let control;
    switch (k) {
      case "enum":
        control = el("select");
        if (!isRequired) control.append(option("", "— not set —"));
        prop.enum.forEach((v, i) => control.append(option(String(i), typeof v === "string" ? v : JSON.stringify(v))));
        if (prop.default !== undefined) {
          const i = prop.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(prop.default));
          if (i >= 0) control.value = String(i);
        }
        break;
      case "boolean":
        if (isRequired) {
          control = el("input");
          control.type = "checkbox";
          control.checked = prop.default === true;
        } else {
          control = el("select");
          control.append(option("", "— not set —"), option("true", "true"), option("false", "false"));
          if (typeof prop.default === "boolean") control.value = String(prop.default);
        }
        break;
      case "number":
      case "integer":
        control = el("input");
        control.type = "number";
        control.step = k === "integer" ? "1" : "any";
        control.inputMode = k === "integer" ? "numeric" : "decimal";
        if (typeof prop.minimum === "number") control.min = String(prop.minimum);
        if (typeof prop.maximum === "number") control.max = String(prop.maximum);
        if (typeof prop.default === "number") control.value = String(prop.default);
        break;
      case "string":
        control = el("input");
        control.type = INPUT_TYPES[prop.format] ?? "text";
        if (typeof prop.maxLength === "number") control.maxLength = prop.maxLength;
        if (typeof prop.default === "string") control.value = prop.default;
        break;
      default:
        control = el("textarea");
        control.rows = 4;
        control.spellcheck = false;
        if (prop?.default !== undefined) control.value = JSON.stringify(prop.default, null, 2);
    }
    control.id = id;
    control.name = name;
    if (isRequired) control.setAttribute("aria-required", "true");
    control.setAttribute("aria-describedby", `${help.id} ${err.id}`);
    wrap.append(label, control, help, err);
    container.append(wrap);
    fields.push({ name, prop, k, isRequired, control, err });
  }

  const read = () => {
    const args = {};
    const errors = [];
    for (const f of fields) {
      const { value, error } = readField(f);
      f.err.hidden = !error;
      f.err.textContent = error ?? "";
      f.control.setAttribute("aria-invalid", error ? "true" : "false");
      if (error) errors.push({ name: f.name, message: error, control: f.control });
      else if (value !== undefined) args[f.name] = value;
    }
    return errors.length ? { errors } : { args };
  };
  return { read };
}

const option = (value, text) => {
  const o = el("option", "", text);
  o.value = value;
  return o;
};

// readField is one field's value (undefined: left out) or what is wrong.
function readField({ prop, k, isRequired, control }) {
  const raw = control.type === "checkbox" ? control.checked : control.value;
  const empty = raw === "" || (typeof raw === "string" && raw.trim() === "" && k !== "string");
  if (empty) return isRequired ? { error: "This field is required." } : { value: undefined };
  switch (k) {
    case "enum":
      return { value: prop.enum[Number(raw)] };
    case "boolean":
      return { value: raw === true || raw === "true" };
    case "number":
    case "integer": {
      const v = Number(raw);
      if (!Number.isFinite(v)) return { error: "Enter a number." };
      if (k === "integer" && !Number.isInteger(v)) return { error: "Enter a whole number." };
      if (typeof prop.minimum === "number" && v < prop.minimum) return { error: `At least ${prop.minimum}.` };
      if (typeof prop.maximum === "number" && v > prop.maximum) return { error: `At most ${prop.maximum}.` };
      return { value: v };
    }
    case "string":
      if (typeof prop.minLength === "number" && raw.length < prop.minLength) return { error: `At least ${prop.minLength} characters.` };
      if (typeof prop.pattern === "string" && !safeTest(prop.pattern, raw)) return { error: `Must match ${prop.pattern}.` };
      return { value: raw };
    default:
      try {
        return { value: JSON.parse(raw) };
      } catch (e) {
        return { error: `Not valid JSON: ${e.message}` };
      }
  }
}

// safeTest checks a schema pattern; a pattern the browser cannot compile is
// left to the server to judge.
function safeTest(pattern, value) {
  try {
    return new RegExp(pattern, "u").test(value);
  } catch {
    return true;
  }
}
