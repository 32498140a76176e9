// Node-side tests import agent modules, which name the Worker's `Env` and `Ai`
// types. Node tests never touch real bindings: loose stand-ins keep them
// type-checkable without pulling the Workers runtime types into Node's.
interface Env {
  [key: string]: unknown;
}
type Ai = { run: (...args: any[]) => Promise<unknown> };
