// SPDX-License-Identifier: GPL-2.0-or-later
//
// berth's Node.js example: a node:http server on $PORT. Its one npm
// dependency, ms, comes from the registry through package-lock.json at
// build time (npm ci); the body names its version to show it was installed.
'use strict';

const http = require('node:http');
const ms = require('ms');
const msVersion = require('ms/package.json').version;

const port = Number(process.env.PORT || 5000);
const started = Date.now();

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  let status = 200;
  let body;
  if (path === '/') {
    body = `Hello from berth's Node.js example (ms ${msVersion})\n`;
  } else if (path === '/uptime') {
    body = `up ${ms(Date.now() - started, { long: true })}\n`;
  } else {
    status = 404;
    body = 'Not found\n';
  }
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
});

server.listen(port, '0.0.0.0', () => {
  console.log(`listening on 0.0.0.0:${port} (NODE_ENV=${process.env.NODE_ENV || ''})`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
