/**
 * `doctor()`: the troubleshooting guide as a function. It looks at the install (backends, GPUs,
 * CPU variant, compiler, AMX) and, given a model file, at the file (whole, pulled intact), its
 * chat format, whether it fits, and how fast it generates against what memory bandwidth allows.
 * Every finding that is not ok says exactly what to do.
 */
import { z } from 'zod';
import { bool, int, num, parseOptions } from '../engine/validate.js';
import { readGgufHeaderUnchecked, type GgufHeader } from '../gguf/reader.js';
import { checkAmx, checkCompiler, checkCpuVariant } from './cpu.js';
import { gatherFacts } from './facts.js';
import { checkModelFile } from './file.js';
import { checkFit } from './fit.js';
import { checkBackends, checkGpus } from './gpu.js';
import { probeSpeed } from './speed.js';
import { checkChatTemplate, checkChatTokens } from './template.js';
import type { Finding, MachineFacts } from './types.js';

export type { Finding, FindingStatus, MachineFacts } from './types.js';
export { gatherFacts } from './facts.js';

const doctorSchema = z.strictObject({
  /** a GGUF file to check: whole, chat format, fit, speed */
  modelPath: z.string({ error: 'expected the path of a GGUF file' }).min(1, { error: 'expected the path of a GGUF file' }).optional(),
  /** the context length to fit (default: the training context up to 4096, as loadModel) */
  nCtx: int(16, 1 << 24).optional(),
  /** the GPU layers to fit and probe with (default 'auto', as loadModel) */
  nGpuLayers: z
    .custom<number | 'max' | 'auto'>((v) => v === 'max' || v === 'auto' || (Number.isInteger(v) && (v as number) >= 0), { error: "expected an integer >= 0, 'max' or 'auto'" })
    .default('auto'),
  /** the speed probe (with modelPath): false skips it; an object bounds it */
  probe: z
    .union([bool(), z.strictObject({ seconds: num(0.1, 600).optional(), maxTokens: int(1, 1 << 16).optional(), bandwidthBytes: int(2 ** 20, 2 ** 34).optional(), threads: int(1, 1024).optional() })], {
      error: 'expected true, false or { seconds, maxTokens, bandwidthBytes, threads }',
    })
    .default(true),
  /** machine facts to check instead of this machine's (tests: hardware that is not here) */
  facts: z.custom<MachineFacts>((v) => typeof v === 'object' && v !== null && 'addon' in v, { error: 'expected facts as gatherFacts() returns them' }).optional(),
  /** called with each finding as it is made (long checks: hashing, the probe) */
  onFinding: z.custom<(finding: Finding) => void>((v) => typeof v === 'function', { error: 'expected a function' }).optional(),
  /** called before a long step (hashing a file, the probe) */
  onProgress: z.custom<(message: string) => void>((v) => typeof v === 'function', { error: 'expected a function' }).optional(),
});
export type DoctorOptions = z.input<typeof doctorSchema>;

/** A check that throws is itself a failing finding: the doctor reports, it does not crash. */
function broken(id: string, err: unknown): Finding {
  return {
    id,
    status: 'fail',
    title: 'this check could not run',
    detail: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    fix: 'run hermes3 doctor --json again and report its output as an issue of hermes3-native',
  };
}

const skipped = (id: string, title: string, because: string): Finding => ({ id, status: 'info', title, detail: `skipped: ${because}`, fix: `fix what '${because.split(' ')[0]}' reports, then run hermes3 doctor again` });

/** Runs every check that applies and returns the findings, in the order of the troubleshooting guide. */
export async function doctor(options: DoctorOptions = {}): Promise<Finding[]> {
  const o = parseOptions(doctorSchema, options, 'doctor');
  const findings: Finding[] = [];
  const add = (...fs: Finding[]) => {
    for (const f of fs) {
      findings.push(f);
      o.onFinding?.(f);
    }
  };
  const guard = async (id: string, check: () => Finding | Finding[] | undefined | Promise<Finding | Finding[] | undefined>) => {
    try {
      const result = await check();
      if (result) add(...(Array.isArray(result) ? result : [result]));
    } catch (err) {
      add(broken(id, err));
    }
  };

  const facts = o.facts ?? (await gatherFacts());
  await guard('backends', () => checkBackends(facts));
  await guard('gpu', () => checkGpus(facts));
  await guard('cpu.variant', () => checkCpuVariant(facts));
  await guard('cpu.compiler', () => checkCompiler(facts));
  await guard('cpu.amx', () => checkAmx(facts));
  if (!o.modelPath) return findings;
  const modelPath = o.modelPath;

  await guard('model.file', () => checkModelFile(modelPath, o.onProgress));
  const fileBad = findings.find((f) => f.id.startsWith('model.') && f.status === 'fail');
  let header: GgufHeader | undefined;
  try {
    header = (await readGgufHeaderUnchecked(modelPath)).header;
  } catch {
    // model.file has said why
  }
  if (header) {
    const h = header;
    await guard('chat.template', () => checkChatTemplate(h));
    await guard('chat.tokens', () => checkChatTokens(h));
  }
  if (fileBad || !header) {
    add(skipped('fit', 'memory fit not checked', `${fileBad?.id ?? 'model.file'} failed`));
    if (o.probe !== false) add(skipped('speed', 'speed not measured', `${fileBad?.id ?? 'model.file'} failed`));
    return findings;
  }
  const h = header;
  const arch = h.metadata.get('general.architecture')?.value;
  const nCtxTrain = Number(h.metadata.get(`${typeof arch === 'string' ? arch : 'llama'}.context_length`)?.value ?? 4096);
  await guard('fit', () => checkFit({ modelPath, nCtxTrain, nCtx: o.nCtx, nGpuLayers: o.nGpuLayers }, facts));
  if (o.probe === false) return findings;
  const fitBad = findings.find((f) => f.id === 'fit' && f.status === 'fail');
  if (!facts.addon.loaded || fitBad) {
    const why = !facts.addon.loaded ? 'backends failed (the addon does not load)' : 'fit failed (the model would not load with these settings)';
    add(skipped('speed', 'speed not measured', why));
    return findings;
  }
  o.onProgress?.('measuring generation speed');
  const cpuVariantBehind = findings.some((f) => f.id === 'cpu.variant' && f.status === 'warn');
  await guard('speed', () => probeSpeed({ modelPath, header: h, nGpuLayers: o.nGpuLayers, cpuVariantBehind }, facts, typeof o.probe === 'object' ? o.probe : {}));
  return findings;
}
