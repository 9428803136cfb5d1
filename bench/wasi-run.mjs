// wasi-run.mjs runs a WASI preview1 command module under Node's node:wasi,
// for bench/run.sh's comparisons.
//
//   node wasi-run.mjs [--dir GUEST=HOST]... module.wasm [args...]
//
// Each --dir is a preopen: the guest sees HOST at the absolute path GUEST.
// The guest gets no environment. The exit status is the guest's.
import { readFile } from 'node:fs/promises';
import { argv, exit } from 'node:process';
import { WASI } from 'node:wasi';

const preopens = {};
let i = 2;
while (argv[i] === '--dir') {
  const [guest, host] = argv[i + 1].split('=');
  preopens[guest] = host;
  i += 2;
}
if (i >= argv.length) {
  console.error('usage: node wasi-run.mjs [--dir GUEST=HOST]... module.wasm [args...]');
  exit(2);
}
const wasi = new WASI({ version: 'preview1', args: argv.slice(i), env: {}, preopens, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(argv[i]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
