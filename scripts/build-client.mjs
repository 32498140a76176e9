#!/usr/bin/env node
// Placeholder until the client library lands: nothing to build yet.
