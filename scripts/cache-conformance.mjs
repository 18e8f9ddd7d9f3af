// The HTTP cache-tests suite (npm `http-cache-tests`, the suite behind
// cache-tests.fyi) driven for scripts/cache-conformance.sh and
// benches/cache-conformance-compare.sh. Node >= 14; the suite's package
// directory is $CACHE_TESTS_DIR (node_modules/http-cache-tests).
//
//   node cache-conformance.mjs origin PORT
//       the suite's origin server on 127.0.0.1:PORT (0: any; prints the port)
//   node cache-conformance.mjs run BASE_URL RESULTS.json [KNOWN_FAILURES]
//       every test against the cache at BASE_URL (a reverse proxy to the
//       origin); writes the results (the suite's JSON, as its `npm run cli`)
//       and prints a summary; with KNOWN_FAILURES, exits 1 when a required
//       test that applies to a private cache fails and is not listed there
//   node cache-conformance.mjs table NAME=RESULTS.json...
//       a Markdown table of several caches' results side by side
//
// Which tests apply to a private cache: the suite marks the ones a browser
// (its private caches) is not tested on with `browser_skip` (shared-cache
// rules: s-maxage, Authorization, CDN directives; and caches answering
// clients' own conditional requests). Every other test applies; the few
// marked `browser_only` (private-only rules, which its command line skips)
// are run too. "required" is the suite's default kind (a failure is a
// conformance problem); "optimal" failures are missed reuse; "check" tests
// only record a behaviour (yes/no).

import http from 'http'
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'
import { createRequire } from 'module'

const pkg = process.env.CACHE_TESTS_DIR
if (!pkg) {
  console.error('CACHE_TESTS_DIR must name the http-cache-tests package directory')
  process.exit(2)
}
const suite = rel => import(pathToFileURL(path.join(pkg, rel)).href)

const [cmd, ...args] = process.argv.slice(2)

async function loadTests () {
  const tests = (await suite('tests/index.mjs')).default
  tests.push((await suite('tests/surrogate-control.mjs')).default)
  return tests
}

// determineTestResult's symbols, by name.
const RESULT_NAMES = {
  '✅': 'pass',
  '⛔️': 'fail',
  '⚠️': 'not_optimal',
  Y: 'yes',
  N: 'no',
  '🔹': 'setup_fail',
  '⁉️': 'harness_fail',
  '⚪️': 'dependency_fail',
  '↻': 'retry',
  '-': 'untested'
}
const COLUMNS = ['pass', 'fail', 'not_optimal', 'yes', 'no', 'setup_fail', 'dependency_fail', 'harness_fail', 'retry', 'untested']
const KINDS = ['required', 'optimal', 'check']
// Results of a required test that count as failing it.
const FAILING = new Set(['fail', 'setup_fail', 'harness_fail', 'retry'])

// A test that sets the browser Fetch API's `cache` mode (which adds request
// fields a browser would): not runnable through a proxy; not counted.
const fetchOnly = t => t.requests.some(r => 'cache' in r)

// Every test with its kind, applicability and result.
async function classify (tests, results) {
  const display = await suite('lib/display.mjs')
  const rows = []
  for (const s of tests) {
    for (const t of s.tests) {
      if (t.browser_only === true && fetchOnly(t)) continue
      const symbol = display.determineTestResult(tests, t.id, results)[2]
      const r = results[t.id]
      rows.push({
        id: t.id,
        suite: s.id,
        kind: t.kind || 'required',
        private: t.browser_skip !== true,
        result: RESULT_NAMES[symbol] || symbol,
        message: Array.isArray(r) ? r.join(': ') : ''
      })
    }
  }
  return rows
}

function counts (rows) {
  const c = {}
  for (const k of KINDS) {
    c[k] = { tests: 0 }
    for (const col of COLUMNS) c[k][col] = 0
  }
  for (const r of rows) {
    c[r.kind].tests++
    c[r.kind][r.result]++
  }
  return c
}

function countTable (title, c) {
  const used = COLUMNS.filter(col => KINDS.some(k => c[k][col] > 0))
  const lines = [title, '  ' + ['kind'.padEnd(9), 'tests', ...used].join('  ')]
  for (const k of KINDS) {
    lines.push('  ' + [k.padEnd(9), String(c[k].tests).padStart(5), ...used.map(col => String(c[k][col]).padStart(col.length))].join('  '))
  }
  return lines.join('\n')
}

function readKnown (file) {
  const known = new Map()
  if (!file) return known
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const t = line.trim()
    if (t === '' || t.startsWith('#')) continue
    const m = t.match(/^(\S+)\s+(.*)$/)
    known.set(m ? m[1] : t, m ? m[2] : '')
  }
  return known
}

async function origin (port) {
  // The suite's server listens on every interface; ours listen on loopback only.
  const listen = http.Server.prototype.listen
  http.Server.prototype.listen = function (p, ...rest) {
    return listen.call(this, p, '127.0.0.1', ...rest)
  }
  process.env.npm_config_protocol = 'http'
  process.env.npm_config_port = String(port)
  process.env.npm_config_pidfile = process.env.npm_config_pidfile || '/dev/null'
  await suite('server/server.mjs')
}

async function run (base, out, knownFile) {
  const started = Date.now()
  const tests = await loadTests()
  for (const s of tests) for (const t of s.tests) if (t.browser_only === true && !fetchOnly(t)) t.browser_only = false
  const { runTests, getResults } = await suite('client/runner.mjs')
  // The suite's own node-fetch, found from its package.
  const fetch = createRequire(path.join(pkg, 'package.json'))('node-fetch')
  await runTests(tests, fetch, false, base.replace(/\/$/, ''))
  const results = getResults()
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
  const rows = await classify(tests, results)
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  const priv = rows.filter(r => r.private)
  console.log(`cache-tests against ${base}: ${rows.length} tests in ${secs} s; results in ${out}\n`)
  console.log(countTable(`Tests that apply to a private cache (${priv.length}):`, counts(priv)))
  console.log()
  console.log(countTable(`All tests (${rows.length}; as cache-tests.fyi counts a reverse proxy):`, counts(rows)))

  const known = readKnown(knownFile)
  const failing = priv.filter(r => r.kind === 'required' && FAILING.has(r.result))
  const fresh = failing.filter(r => !known.has(r.id))
  console.log(`\nRequired private-cache tests failing: ${failing.length} (${failing.length - fresh.length} known)`)
  for (const r of failing) {
    const note = known.has(r.id) ? `known: ${known.get(r.id)}` : 'NEW'
    console.log(`  ${r.id} [${r.result}] ${r.message}\n      ${note}`)
  }
  const passing = [...known.keys()].filter(id => !failing.some(r => r.id === id))
  for (const id of passing) {
    console.log(`  note: ${id} is listed as a known failure but did not fail: remove it from the list`)
  }
  if (knownFile && fresh.length > 0) {
    console.log(`\nFAILED: ${fresh.length} required private-cache test(s) failing and not in ${knownFile}`)
    process.exitCode = 1
  }
}

async function table (pairs) {
  const tests = await loadTests()
  const named = []
  for (const p of pairs) {
    const i = p.indexOf('=')
    const results = JSON.parse(fs.readFileSync(p.slice(i + 1), 'utf8'))
    named.push([p.slice(0, i), await classify(tests, results)])
  }
  const cell = (rows, kind, results) => rows.filter(r => r.kind === kind && results.includes(r.result)).length
  const lines = []
  for (const [title, keep] of [['Tests that apply to a private cache', r => r.private], ['All tests', () => true]]) {
    const n = named[0][1].filter(keep).length
    lines.push(`| ${title} (${n}) | ${named.map(([name]) => name).join(' | ')} |`)
    lines.push(`|---|${named.map(() => '---:').join('|')}|`)
    const rowsFor = [
      ['required: pass', 'required', ['pass']],
      ['required: fail', 'required', ['fail', 'setup_fail', 'harness_fail', 'retry']],
      ['required: not tested (a dependency failed)', 'required', ['dependency_fail', 'untested']],
      ['optimal: pass', 'optimal', ['pass']],
      ['optimal: not optimal', 'optimal', ['not_optimal', 'setup_fail', 'harness_fail', 'retry']],
      ['optimal: not tested (a dependency failed)', 'optimal', ['dependency_fail', 'untested']],
      ['check: yes', 'check', ['yes']],
      ['check: no', 'check', ['no', 'setup_fail', 'harness_fail', 'retry']],
      ['check: not tested (a dependency failed)', 'check', ['dependency_fail', 'untested']]
    ]
    for (const [label, kind, results] of rowsFor) {
      lines.push(`| ${label} | ${named.map(([, rows]) => cell(rows.filter(keep), kind, results)).join(' | ')} |`)
    }
    const pass = rows => rows.filter(keep).filter(r => r.result === 'pass').length
    lines.push(`| **passes (required + optimal)** | ${named.map(([, rows]) => `**${pass(rows)}**`).join(' | ')} |`)
    lines.push('')
  }
  console.log(lines.join('\n'))
}

if (cmd === 'origin') {
  await origin(args[0] || '0')
} else if (cmd === 'run' && args.length >= 2) {
  await run(args[0], args[1], args[2])
} else if (cmd === 'table' && args.length >= 1) {
  await table(args)
} else {
  console.error('usage: cache-conformance.mjs origin PORT | run BASE_URL RESULTS.json [KNOWN_FAILURES] | table NAME=RESULTS.json...')
  process.exit(2)
}
