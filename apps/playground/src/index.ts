export const APP = "playground";
