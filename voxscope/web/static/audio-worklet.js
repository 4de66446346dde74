// Microphone capture for live recognition: mono PCM16 at 16 kHz in 100 ms frames (1600 samples),
// resampled here from the AudioContext's rate (a low-pass against aliasing, then linear
// interpolation), plus the frame's peak level for the meter.
const OUT_RATE = 16000;
const FRAME = 1600;

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // where the next output falls, between the previous (0) and current (1) input
    this.prev = 0;
    this.frame = new Int16Array(FRAME);
    this.n = 0;
    this.peak = 0;
    this.filter = this.step > 1 ? lowpass(sampleRate, 0.45 * OUT_RATE) : null;
    this.port.onmessage = (e) => {
      if (e.data === "flush") {
        this.send(this.n);
        this.port.postMessage({ flushed: true });
      }
    };
  }

  send(count) {
    if (count > 0) {
      const pcm = this.frame.slice(0, count).buffer;
      this.port.postMessage({ pcm, level: this.peak }, [pcm]);
    }
    this.n = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const x = this.filter ? this.filter(input[i]) : input[i];
      while (this.pos <= 1) {
        const v = Math.max(-1, Math.min(1, this.prev + (x - this.prev) * this.pos));
        this.peak = Math.max(this.peak, Math.abs(v));
        this.frame[this.n++] = v < 0 ? v * 32768 : v * 32767;
        if (this.n === FRAME) this.send(FRAME);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = x;
    }
    return true;
  }
}

/** A biquad low-pass (RBJ cookbook, Q = 1/sqrt 2) as a per-sample function. */
function lowpass(rate, cutoff) {
  const w = (2 * Math.PI * cutoff) / rate, alpha = Math.sin(w) / Math.SQRT2, cos = Math.cos(w);
  const a0 = 1 + alpha;
  const b0 = (1 - cos) / 2 / a0, b1 = (1 - cos) / a0, b2 = b0;
  const a1 = (-2 * cos) / a0, a2 = (1 - alpha) / a0;
  let x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  return (x) => {
    const y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1; x1 = x; y2 = y1; y1 = y;
    return y;
  };
}

registerProcessor("pcm16-capture", Pcm16Capture);
