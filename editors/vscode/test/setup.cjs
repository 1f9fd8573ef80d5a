// Resolves require('vscode') (also from inside vscode-languageclient) to the mock.
const Module = require('module');
const path = require('path');
const mock = path.join(__dirname, 'vscode-mock.cjs');
const orig = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'vscode' ? mock : orig.call(this, request, ...rest);
};
