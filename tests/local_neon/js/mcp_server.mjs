// Neon's official MCP server (@neondatabase/mcp-server-neon 0.6.5), unmodified, against local Neon: NEON_API_HOST
// points its API calls there, and a preloaded module points the serverless driver it runs SQL with at local Neon's
// /sql (the only setting its SQL tools need). Usage: node mcp_server.mjs <API host> <API key> <project id> <API port>.
import { writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [apiHost, apiKey, projectId, port] = process.argv.slice(2);
const preload = new URL('./point-driver.mjs', import.meta.url).pathname;
writeFileSync(
  preload,
  `import { neonConfig } from '@neondatabase/serverless';\nneonConfig.fetchEndpoint = 'http://127.0.0.1:${port}/sql';\n`,
);
const server = new URL('./node_modules/@neondatabase/mcp-server-neon/dist/index.js', import.meta.url).pathname;
const transport = new StdioClientTransport({
  command: process.execPath,
  args: ['--import', preload, server, 'start', apiKey],
  env: { ...process.env, NEON_API_HOST: apiHost },
  stderr: 'inherit',
});
const client = new Client({ name: 'neon-mcp-tests', version: '0.0.0' });
await client.connect(transport);
const out = {};
out.tools = (await client.listTools()).tools.map((tool) => tool.name);
const text = (result) => result.content.map((part) => part.text ?? '').join('\n');
out.run_sql = text(
  await client.callTool({ name: 'run_sql', arguments: { params: { sql: 'SELECT current_user AS who', projectId } } }),
);
out.run_sql_transaction = text(
  await client.callTool({
    name: 'run_sql_transaction',
    arguments: { params: { sqlStatements: ['SELECT 1 AS one', 'SELECT 2 AS two'], projectId } },
  }),
);
out.describe = text(await client.callTool({ name: 'get_database_tables', arguments: { params: { projectId } } }));
await client.close();
console.log(JSON.stringify(out));
