/**
 * @packageDocumentation
 * Work in progress.
 */
export const PACKAGE = "@smashlab/hw-engine";
