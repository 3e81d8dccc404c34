/** The Strata version, shown by the CLI and the API's OpenAPI document. */
export const VERSION = '0.1.0';
