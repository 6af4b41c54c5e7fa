// Reads Parquet files with DuckDB (an independent reader: not the Go
// library that wrote them) and prints what the export test checks, as JSON.
// usage: node duckdb_read.cjs 'DIR/data/*.parquet'
const { DuckDBInstance } = require('@duckdb/node-api');
(async () => {
  const glob = process.argv[2].replace(/'/g, "''");
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const q = async (sql) => (await c.runAndReadAll(sql)).getRowObjectsJson();
  const src = `read_parquet('${glob}', filename=true)`;
  const out = {
    files: await q(`SELECT regexp_extract(filename, '[^/]+$') AS file, count(*)::INTEGER AS rows FROM ${src} GROUP BY 1 ORDER BY 1`),
    columns: (await q(`DESCRIBE SELECT * EXCLUDE (filename) FROM ${src}`)).map((r) => r.column_name + ' ' + r.column_type),
    rows: await q(`SELECT regexp_extract(filename, '[^/]+$') AS file, id, category, difficulty, region_tags, payload_type, prompt, response,
      teacher.provider AS provider, teacher.chosen_model AS chosen_model, teacher.attempted_models AS attempted_models,
      teacher.latency_s AS latency_s, teacher.usage.total_tokens::INTEGER AS total_tokens, len(teacher.fallbacks)::INTEGER AS fallbacks,
      quality.overall_ok AS overall_ok, json_extract(quality.gates, '$.contract_ok.passed')::BOOLEAN AS contract_ok, created_at
      FROM ${src} ORDER BY id`),
  };
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
