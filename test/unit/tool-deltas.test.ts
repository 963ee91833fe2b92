import { describe, expect, it } from 'vitest';
import { ToolCallDeltaStream, type ToolDeltaEvent } from '../../src/tools/deltas.js';

/** Feeds `text` in pieces of `size` characters and returns every event. */
function run(text: string, size: number): ToolDeltaEvent[] {
  const s = new ToolCallDeltaStream();
  const out: ToolDeltaEvent[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...s.push(text.slice(i, i + size)));
  out.push(...s.end());
  return out;
}

const joined = (events: ToolDeltaEvent[], index: number) =>
  events.filter((e) => e.type === 'call_args' && e.index === index).map((e) => (e as { text: string }).text).join('');
const text = (events: ToolDeltaEvent[]) => events.filter((e) => e.type === 'text').map((e) => (e as { text: string }).text).join('');

describe('tool calls piece by piece', () => {
  const reply = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris \\"}{\\" x", "days": [1, {"a": 2}]}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';

  for (const size of [1, 3, 7, 1000]) {
    it(`streams names, then arguments as they grow, then the parsed calls (pieces of ${size})`, () => {
      const events = run(reply, size);
      expect(text(events)).toBe('Let me check.\n\n');
      const starts = events.filter((e) => e.type === 'call_start');
      expect(starts).toEqual([{ type: 'call_start', index: 0, name: 'get_weather' }, { type: 'call_start', index: 1, name: 'get_time' }]);
      expect(joined(events, 0)).toBe('{"city": "Paris \\"}{\\" x", "days": [1, {"a": 2}]}');
      expect(JSON.parse(joined(events, 1))).toEqual({});
      const ends = events.filter((e) => e.type === 'call_end') as Extract<ToolDeltaEvent, { type: 'call_end' }>[];
      expect(ends.map((e) => e.call)).toEqual([
        { name: 'get_weather', arguments: { city: 'Paris "}{" x', days: [1, { a: 2 }] } },
        { name: 'get_time', arguments: {} },
      ]);
      expect(ends[0].arguments).toBe(joined(events, 0));
      // a call starts before its arguments and ends after them
      const order = events.filter((e) => e.type !== 'text' && (e as { index: number }).index === 0).map((e) => e.type);
      expect(order[0]).toBe('call_start');
      expect(order[order.length - 1]).toBe('call_end');
      if (size < 10) expect(order.filter((t) => t === 'call_args').length).toBeGreaterThan(3);
    });
  }

  it('reads a block in another form whole when it closes', () => {
    const events = run("<tool_call>\n{'arguments': {'q': 1}, 'name': 'search'}\n</tool_call>", 4);
    expect(events.map((e) => e.type)).toEqual(['call_start', 'call_args', 'call_end']);
    expect((events[2] as { call: unknown }).call).toEqual({ name: 'search', arguments: { q: 1 } });
    expect(joined(events, 0)).toBe('{"q":1}');
  });

  it('keeps text that only looks like a call, and ends a call cut short', () => {
    expect(text(run('a <tool_ca b <tool_call>not json</tool_call> c', 2))).toBe('a <tool_ca b <tool_call>not json</tool_call> c');
    const cut = run('<tool_call>\n{"name": "f", "arguments": {"x": "abc', 3);
    expect(cut.filter((e) => e.type === 'call_start')).toHaveLength(1);
    expect(joined(cut, 0)).toBe('{"x": "abc');
    expect(cut[cut.length - 1]).toMatchObject({ type: 'call_end', call: { name: 'f' }, arguments: '{"x": "abc' });
  });
});
