// Scripted API monitor of the notes API's status route (deploy/monitoring).
// terraform fills in the URL and the credential's name; the token itself is
// read at run time from New Relic's secure credentials, never written here.
var assert = require('assert');

$http.get({
  url: '${status_url}',
  headers: {
    'Authorization': 'Bearer ' + $secure.${credential_key},
    'Accept': 'application/health+json'
  },
  timeout: 10000
}, function (err, response, body) {
  assert.ifError(err);
  assert.equal(response.statusCode, 200, 'GET /status answered ' + response.statusCode + ': ' + body);
  var status = JSON.parse(body).status;
  // warn: degraded (a cache or e-mail relay down) but serving.
  assert.ok(status === 'pass' || status === 'warn', 'status is ' + status + ': ' + body);
});
