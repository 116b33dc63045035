/**
 * Expands a grafana-clickhouse-datasource SQL query the way Grafana and the plugin do for a fixed
 * time range and variable selection, so tests can run dashboard SQL on ClickHouse directly.
 *
 * Same order as the plugin: `$__conditionalAll` (plugin frontend), then template variables
 * (Grafana's template service), then the backend macros (pkg/macros/macros.go).
 *
 * Supported:
 * - `$__conditionalAll(condition, $var)` → `1=1` when `$var` is All, else the condition.
 * - Variables `$name`, `${name}`, `${name:singlequote}` (each value quoted, `'` escaped as `\'`,
 *   joined by commas — Grafana's singlequote format), `${name:csv}`/`${name:raw}` (joined by
 *   commas). All expands to every option's value.
 * - `$__timeFilter(col)` → `col >= toDateTime(from) AND col <= toDateTime(to)` (seconds).
 * - `$__fromTime`, `$__toTime` → `toDateTime(seconds)`.
 * - `$__interval_s` → the interval in whole seconds, at least 1.
 * - `$__timeInterval(col)` → `toStartOfInterval(toDateTime(col), INTERVAL n second)` (not on
 *   ClickHouse 18.16, which has no toStartOfInterval: the dashboards bucket with intDiv instead).
 * Macro arguments may not contain parentheses (the dashboards need none). Any other `$__name`
 * left after expansion is an error, so a dashboard cannot silently use an unsupported macro.
 */

export type VariableSelection = 'All' | readonly string[];

export interface ExpandContext {
  fromMs: number;
  toMs: number;
  /** Grafana's interval for the panel ($__interval), in ms. */
  intervalMs: number;
  /** Selected values per variable; All needs `options`. */
  variables: Record<string, VariableSelection>;
  /** Every option of each variable, for All. */
  options?: Record<string, readonly string[]>;
}

const ALL_MARKER = '$__all';

function selected(ctx: ExpandContext, name: string): readonly string[] | undefined {
  const sel = ctx.variables[name];
  if (sel === undefined) return undefined;
  if (sel !== 'All') return sel;
  const opts = ctx.options?.[name];
  if (opts === undefined) throw new Error(`variable ${name} is All but has no options`);
  return opts;
}

/** The plugin's argument splitter: commas at bracket depth 1 of the call starting at `open`. */
function macroArgs(sql: string, open: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < sql.length; i++) {
    const ch = sql[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 1) {
      args.push(sql.slice(start, i));
      start = i + 1;
    }
    if (depth === 0) {
      args.push(sql.slice(start, i));
      return { args, end: i + 1 };
    }
  }
  throw new Error(`unbalanced parentheses after ${sql.slice(open, open + 40)}`);
}

export function applyConditionalAll(sql: string, ctx: ExpandContext): string {
  const macro = '$__conditionalAll(';
  let out = sql;
  for (let at = out.lastIndexOf(macro); at !== -1; at = out.lastIndexOf(macro)) {
    const { args, end } = macroArgs(out, at + macro.length - 1);
    const [condition, variable] = args;
    if (args.length !== 2 || condition === undefined || variable === undefined) throw new Error('$__conditionalAll needs 2 arguments');
    const name = variable.trim().replace(/^\$\{?/, '').replace(/\}$/, '');
    const isAll = ctx.variables[name] === 'All';
    out = out.slice(0, at) + (isAll ? '1=1' : condition) + out.slice(end);
  }
  return out;
}

function formatValues(values: readonly string[], format: string | undefined, name: string): string {
  switch (format) {
    case 'singlequote':
      return values.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
    case undefined:
    case 'csv':
    case 'raw':
      return values.join(',');
    default:
      throw new Error(`variable format ${format} (in \${${name}:${format}}) is not supported by the expander`);
  }
}

export function applyVariables(sql: string, ctx: ExpandContext): string {
  return sql.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (whole, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    if (name.startsWith('__')) return whole; // Grafana globals and the plugin's macros
    const values = selected(ctx, name);
    if (values === undefined) return whole; // Grafana leaves unknown variables as they are
    return formatValues(values, format, name);
  });
}

const dateTime = (ms: number): string => `toDateTime(${Math.floor(ms / 1000)})`;

export function applyBackendMacros(sql: string, ctx: ExpandContext): string {
  const intervalS = Math.max(Math.floor(ctx.intervalMs / 1000), 1);
  const out = sql.replace(/\$__(\w+)(?:\(([^()]*)\))?/g, (whole, name: string, rawArgs: string | undefined) => {
    const args = rawArgs === undefined ? [] : rawArgs.split(',').map((a) => a.trim());
    const col = (): string => {
      if (args.length !== 1 || args[0] === undefined || args[0] === '') throw new Error(`$__${name} needs 1 argument`);
      return args[0];
    };
    switch (name) {
      case 'timeFilter':
        return `${col()} >= ${dateTime(ctx.fromMs)} AND ${col()} <= ${dateTime(ctx.toMs)}`;
      case 'fromTime':
        return dateTime(ctx.fromMs);
      case 'toTime':
        return dateTime(ctx.toMs);
      case 'interval_s':
        return String(intervalS);
      case 'timeInterval':
        return `toStartOfInterval(toDateTime(${col()}), INTERVAL ${intervalS} second)`;
      default:
        throw new Error(`macro ${whole} is not supported by the expander`);
    }
  });
  if (out.includes(ALL_MARKER)) throw new Error('unexpanded All marker in SQL');
  return out;
}

/** The SQL Grafana would send to ClickHouse for this time range and selection. */
export function expandGrafanaSql(sql: string, ctx: ExpandContext): string {
  return applyBackendMacros(applyVariables(applyConditionalAll(sql, ctx), ctx), ctx);
}
