/**
 * @packageDocumentation
 * Work in progress.
 */
export const PACKAGE = "@smashlab/iommufd";
