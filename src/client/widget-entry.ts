/** Entry of static/widget.js: mount once the document has a body. */
import { mountWidget } from './widget';

const script = document.currentScript as HTMLScriptElement | null;
const mount = () => {
  const widget = mountWidget(script);
  (globalThis as { edgestreamWidget?: unknown }).edgestreamWidget = widget;
};
if (document.body) mount();
else document.addEventListener('DOMContentLoaded', mount, { once: true });
