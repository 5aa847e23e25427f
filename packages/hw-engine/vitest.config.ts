import { smashlabProject } from "../../vitest.shared.ts";

export default smashlabProject("hw-engine");
