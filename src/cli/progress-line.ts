/** One status line redrawn in place on a terminal; plain lines every few seconds otherwise. */
export class ProgressLine {
  private lastPlain = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(text: string): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${text}`);
    } else if (Date.now() - this.lastPlain >= 5000) {
      this.lastPlain = Date.now();
      this.stream.write(`${text}\n`);
    }
  }

  done(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
