import { smashlabProject } from "../../vitest.shared.ts";

export default smashlabProject("playground");
