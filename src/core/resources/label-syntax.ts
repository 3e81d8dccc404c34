/**
 * The syntax of label keys and values, as Kubernetes has it. A module of its own with no imports, so the
 * label selector (selector.ts) carries no dependency and the web UI can bundle it to match labels exactly
 * as the server does.
 */

/** A label or annotation key, as Kubernetes has it: `[prefix/]name`, the prefix a DNS subdomain. */
export const LABEL_KEY_RE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or up to 63 of A-Z a-z 0-9 - _ . starting and ending with a letter or digit. */
export const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
