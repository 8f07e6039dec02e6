// Loads the WebAssembly app; kept out of index.html so no inline script is needed.
import init from "/ui/pkg/promptos_ui.js";
init();
