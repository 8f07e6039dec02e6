// The ES module entry point: the same classes as the CommonJS one (one copy of the addon).
import promptos from './index.cjs';

export const {
  Prompts, version, PromptosError, PromptNotFound, MissingVariable, Unavailable, Unauthorized, WrongKind,
  RenderError, ProtocolError, ConfigurationError,
} = promptos;
export default promptos;
