// Loads the WebAssembly app; kept out of index.html so no inline script is needed.
// Relative, so it finds the app in the same content-hashed folder it was served from.
import init from "./pkg/promptos_ui.js";
init();
