/**
 * The callbacks `pg` may call on a submittable (an object with `submit(connection)` passed to
 * `client.query`) that our COPY streams do not use. Subclasses implement `submit`, the copy
 * handling, `handleError` and `handleReadyForQuery`.
 */
export abstract class Submittable {
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleCopyInResponse(): void {}
  handlePortalSuspended(): void {}
}
