// Pasted or uploaded leads → the API's lead objects.
// CSV needs a header row (RFC 4180 quoting: "a, b", doubled "" inside quotes, line
// breaks inside quotes); JSON is an array of objects or {"leads": [...]}.
// Known columns map to the lead's own fields whatever their spelling
// ("First Name", first_name, firstname → firstName); every other column goes to
// `fields`, which templates reach as {{fields.column}} (a name with spaces or
// punctuation becomes letters, digits and "_": "Job Title" → {{fields.Job_Title}}).

const KNOWN = {
  email: "email", emailaddress: "email", mail: "email",
  firstname: "firstName", first: "firstName", givenname: "firstName",
  lastname: "lastName", last: "lastName", surname: "lastName", familyname: "lastName",
  company: "company", organization: "company", organisation: "company", companyname: "company",
  timezone: "timeZone", tz: "timeZone", zone: "timeZone",
};

export class LeadsError extends Error {}

function canonical(name) {
  return KNOWN[String(name).toLowerCase().replace(/[^a-z]/g, "")] || null;
}

/** Splits CSV text into rows of cells. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  let i = 0;
  const source = text.replace(/^\uFEFF/, "");
  while (i < source.length) {
    const ch = source[i];
    if (quoted) {
      if (ch === '"') {
        if (source[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        cell += ch;
      }
      i += 1;
      continue;
    }
    if (ch === '"' && cell === "") quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && source[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += ch;
    i += 1;
  }
  if (quoted) throw new LeadsError("The CSV has a quote that is never closed.");
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c.trim() !== ""));
}

/** A column name as the API accepts it in `fields`: letters, digits, "_" ("Job Title" → Job_Title). */
export function fieldName(column) {
  const name = String(column).trim().replace(/[^A-Za-z0-9_]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 64);
  if (!name) return "";
  return /^[0-9]/.test(name) ? `_${name}`.slice(0, 64) : name;
}

function toLead(record, where) {
  if (!record || typeof record !== "object" || Array.isArray(record)) {
    throw new LeadsError(`${where} is not an object with columns.`);
  }
  const lead = { fields: {} };
  for (const [key, value] of Object.entries(record)) {
    if (key === "fields" && value && typeof value === "object" && !Array.isArray(value)) {
      Object.assign(lead.fields, value);
      continue;
    }
    const name = canonical(key);
    const text = value === null || value === undefined ? "" : typeof value === "string" ? value.trim() : value;
    if (name) lead[name] = String(text);
    else if (fieldName(key)) lead.fields[fieldName(key)] = text;
  }
  if (!Object.keys(lead.fields).length) delete lead.fields;
  return lead;
}

/** parseLeads(text) → [{email, firstName, lastName, company, timeZone, fields}] */
export function parseLeads(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return [];
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    let data;
    try {
      data = JSON.parse(trimmed);
    } catch (err) {
      throw new LeadsError(`The leads look like JSON but do not parse: ${err.message}`);
    }
    const list = Array.isArray(data) ? data : data && Array.isArray(data.leads) ? data.leads : null;
    if (!list) throw new LeadsError('JSON leads must be an array of objects, or {"leads": [...]}.');
    return list.map((record, i) => toLead(record, `Lead ${i + 1}`));
  }
  const rows = parseCsv(trimmed);
  const [header, ...body] = rows;
  const names = header.map((h) => h.trim());
  if (!names.some((n) => canonical(n) === "email")) {
    throw new LeadsError(`The CSV needs a header row with an "email" column (found: ${names.join(", ") || "nothing"}).`);
  }
  return body.map((cells, r) => {
    if (cells.length > names.length) {
      throw new LeadsError(`CSV line ${r + 2} has ${cells.length} cells but the header has ${names.length}.`);
    }
    const record = {};
    names.forEach((name, c) => {
      if (name) record[name] = cells[c] ?? "";
    });
    return toLead(record, `CSV line ${r + 2}`);
  });
}
