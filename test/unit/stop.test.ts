import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/engine/stop.js';

function run(stops: string[], pieces: string[]) {
  const m = new StopMatcher(stops);
  const out = pieces.map((p) => m.push(p));
  return { out, rest: m.flush(), stopped: m.stopped };
}

describe('StopMatcher', () => {
  it('passes text through without stop strings', () => {
    expect(run([], ['a', 'b'])).toEqual({ out: ['a', 'b'], rest: '', stopped: false });
  });

  it('cuts at a stop string inside one piece', () => {
    expect(run(['END'], ['hello END world'])).toEqual({ out: ['hello '], rest: '', stopped: true });
  });

  it('holds back a possible start and matches across pieces', () => {
    expect(run(['</stop>'], ['text </', 'sto', 'p> more'])).toEqual({ out: ['text ', '', ''], rest: '', stopped: true });
  });

  it('releases held text that turns out not to be a stop string', () => {
    expect(run(['</stop>'], ['a </', 'b'])).toEqual({ out: ['a ', '</b'], rest: '', stopped: false });
    expect(run(['</stop>'], ['a </st'])).toEqual({ out: ['a '], rest: '</st', stopped: false });
  });

  it('takes the earliest of several stop strings', () => {
    expect(run(['bb', 'a'], ['xxbba'])).toEqual({ out: ['xx'], rest: '', stopped: true });
  });

  it('emits nothing after stopping', () => {
    const m = new StopMatcher(['x']);
    expect(m.push('ax')).toBe('a');
    expect(m.push('more')).toBe('');
  });
});
