// The API's errors in the reader's language: chosen by the envelope's `code` and the field its
// `detail` starts with (`field: problem`), never from the English text of `detail`.
import { has, t } from "./i18n.js";

const FIELD = /^([A-Za-z][\w.\-[\]/]*(?:, [A-Za-z][\w.\-[\]/]*)*):\s/;

/** The field (or comma list of fields) an error's detail names first, or null. */
export function errorField(detail) {
  return FIELD.exec(detail ?? "")?.[1] ?? null;
}

/** One error of the envelope as a translated sentence; unknown ones get a generic message,
 * with the field's name when the detail names one. */
export function describeError(error) {
  const field = errorField(error.detail);
  const code = error.code ?? "";
  const keys = field
    ? [
        `apiError.${code}.${field}`,
        `apiError.${code}.${field.split(/[.[,]/)[0]}`,
        `apiError.${code}.anyField`,
        "apiError.anyField",
      ]
    : [`apiError.${code}`, "apiError.unknown"];
  return t(keys.find(has), { field });
}
