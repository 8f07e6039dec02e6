'use strict';
// The SDK's errors as classes under PromptosError. The native addon throws an Error
// whose message is JSON naming the class and the details (src/errors.rs).

/** Every error of this package. */
class PromptosError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = new.target.name;
    /** The prompt concerned, when there is one. */
    this.prompt = details.prompt ?? undefined;
    /** The environment concerned, when there is one. */
    this.environment = details.environment ?? undefined;
  }
}
/** Nothing is deployed under that name in that environment. */
class PromptNotFound extends PromptosError {}
/** The template reads variables the caller did not pass; `variables` names them. */
class MissingVariable extends PromptosError {
  constructor(message, details = {}) {
    super(message, details);
    this.variables = details.variables ?? [];
  }
}
/** The server could not be reached and nothing is cached for this prompt. */
class Unavailable extends PromptosError {}
/** The credential was refused (401) or lacks the right (403). */
class Unauthorized extends PromptosError {}
/** A chat prompt was asked for as text, or a text prompt as chat. */
class WrongKind extends PromptosError {
  constructor(message, details = {}) {
    super(message, details);
    this.kind = details.promptKind ?? undefined;
  }
}
/** The template failed while rendering. */
class RenderError extends PromptosError {}
/** The server answered something this SDK does not understand. */
class ProtocolError extends PromptosError {}
/** The client was configured wrongly, or used after close(). */
class ConfigurationError extends PromptosError {}

const classes = {
  PromptNotFound, MissingVariable, Unavailable, Unauthorized, WrongKind, RenderError, ProtocolError,
  ConfigurationError,
};

/** The PromptosError for an error thrown by the addon (others are returned as they are). */
function fromNative(error) {
  if (!(error instanceof Error) || !error.message.startsWith('{')) return error;
  let details;
  try {
    details = JSON.parse(error.message);
  } catch {
    return error;
  }
  const Class = classes[details.kind] ?? PromptosError;
  return new Class(details.message, details);
}

module.exports = { PromptosError, ...classes, fromNative };
