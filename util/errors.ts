/**
 * Errors that say the user's input is wrong (a path that does not exist, a folder that is not
 * what it should be, a dataset that cannot be read): the command line tools exit 2 for them,
 * as for a bad flag or config, and keep 1 for failures of the run itself.
 *
 * @module
 */

/**
 * Bad input named by the user: a missing or wrong path, a file whose content cannot be used.
 * The message says what is wrong and where.
 */
export class InputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InputError";
  }
}
