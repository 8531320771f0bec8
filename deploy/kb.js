/*
 * Edge mode (njs 0.7.x): the session token checked inside nginx, no round trip to the gate.
 *
 * nginx.conf.template uses two variables:
 *   js_set $kb_edition kb.edition;  // '' (no cookie: 'public'), 'gate', or the token's edition
 *   js_set $kb_target  kb.target;   // the edition folder to serve this request from, or 'gate'
 *   js_set $kb_asset   kb.asset;    // 'public' for a fingerprinted theme asset, or 'gate'
 * 'gate' means: proxy the request to the gate, which renews an expired session token, or
 * answers 303/401/403 exactly as it does standalone. Whenever anything is unusual (a malformed,
 * expired or foreign token, a second cookie of the same name, a method other than GET/HEAD, an
 * Authorization header, a strange path) the answer is 'gate': being stricter than the gate only
 * costs a round trip, never a leak.
 *
 * The rules mirror the gate's Python code and are tested against the same truth table
 * (tests/data/access_truth_table.json):
 *   maySee      <-> gate.access.may_see
 *   editionName <-> gate.editions.edition_name
 *   sectionOf   <-> gate.sections.section_of_url
 *   verifyToken <-> gate.tokens.decode (HS256, iss, typ 'session', exp, well-formed claims)
 * The signing key comes, hex-encoded, from the environment variable KB_KEY (`env KB_KEY;`).
 */

var crypto = require('crypto');

var SECTIONS = ['launches', 'functionality', 'maintenance', 'claim-desk'];  // the site's order
var ISSUER = 'set10-kb-gate';
var COOKIE = 'kb_session';
var GATE = 'gate';
var PUBLIC = 'public';
var NONE = 'none';
var ALL = 'all';
var HEADER = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9';  // {"alg":"HS256","typ":"JWT"}, as the gate writes it
var MAX_TOKEN_LENGTH = 4096;
var REQUIRED = ['iss', 'sub', 'org', 'tariff', 'sections', 'iat', 'exp', 'jti', 'typ'];
var HEX = /^(?:[0-9a-fA-F]{2})+$/;
// Regular expressions cost more per request in njs than everything else here together, so the
// hot path checks characters by hand (measured: 11.8k -> 23k requests/s on one page).

function isSection(s) {
    return typeof s === 'string' && SECTIONS.indexOf(s) >= 0;
}

/* May a visitor whose tariff opens `sections` see a page of `section` (null = public)? */
function maySee(sections, section) {
    if (section === null || section === undefined) {
        return true;
    }
    return isSection(section) && Array.isArray(sections) && sections.indexOf(section) >= 0;
}

/* 'none' (no section), 'all', or the sections in the site's order joined by '+'; throws on an
   unknown section, like gate.editions.edition_name. */
function editionName(sections) {
    var i;
    for (i = 0; i < sections.length; i++) {
        if (!isSection(sections[i])) {
            throw new Error('unknown section: ' + sections[i]);
        }
    }
    var present = SECTIONS.filter(function (s) { return sections.indexOf(s) >= 0; });
    if (present.length === 0) {
        return NONE;
    }
    if (present.length === SECTIONS.length) {
        return ALL;
    }
    return present.join('+');
}

/* The sections an edition name stands for (the inverse of editionName). */
function sectionsOf(edition) {
    if (edition === ALL) {
        return SECTIONS.slice();
    }
    if (edition === NONE || edition === PUBLIC || edition === '') {
        return [];
    }
    return edition.split('+');
}

/* Section of a decoded, normalized path like '/launches/x/': its first segment, lower-cased,
   when that is a section; null for a public path; undefined when the first segment is unusual
   (not plain printable ASCII), which sends the request to the gate. */
function sectionOf(path) {
    var start = 0;
    while (path.charCodeAt(start) === 47) {  // '/'
        start++;
    }
    var end = path.indexOf('/', start);
    var top = end < 0 ? path.slice(start) : path.slice(start, end);
    for (var i = 0; i < top.length; i++) {
        var c = top.charCodeAt(i);
        if (c < 0x21 || c > 0x7e) {
            return undefined;
        }
    }
    top = top.toLowerCase();
    return isSection(top) ? top : null;
}

function b64json(part) {
    var value = JSON.parse(Buffer.from(part, 'base64url').toString());
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new Error('not a JSON object');
    }
    return value;
}

function sameString(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var diff = 0;
    for (var i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

function isDigits(s) {
    if (s.length === 0) {
        return false;
    }
    for (var i = 0; i < s.length; i++) {
        var c = s.charCodeAt(i);
        if (c < 48 || c > 57) {
            return false;
        }
    }
    return true;
}

function isInt(v) {
    return typeof v === 'number' && Number.isInteger(v);
}

/* The edition a session token stands for, or null when the gate must look at it.
   key: a Buffer; now: seconds since the epoch (may be fractional). */
function verifyToken(token, key, now) {
    try {
        if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
            return null;
        }
        // No shape check needed: the signature covers the first two parts exactly, and the
        // third must equal the base64url HMAC computed here.
        var parts = token.split('.');
        if (parts.length !== 3 || parts[0] !== HEADER) {
            return null;
        }
        var expected = crypto.createHmac('sha256', key).update(parts[0] + '.' + parts[1])
            .digest('base64url');
        if (!sameString(expected, parts[2])) {
            return null;
        }
        var c = b64json(parts[1]);
        for (var i = 0; i < REQUIRED.length; i++) {
            if (c[REQUIRED[i]] === undefined || c[REQUIRED[i]] === null) {
                return null;
            }
        }
        if (c.iss !== ISSUER || c.typ !== 'session' || typeof c.sid !== 'string'
                || typeof c.sub !== 'string' || !isDigits(c.sub)
                || !isInt(c.iat) || !isInt(c.exp) || c.iat > c.exp
                || c.iat > now || c.exp <= now
                || c.nbf !== undefined || c.aud !== undefined
                || !Array.isArray(c.sections)) {
            return null;
        }
        for (i = 0; i < c.sections.length; i++) {
            if (!isSection(c.sections[i])) {
                return null;
            }
        }
        return editionName(c.sections);
    } catch (e) {
        return null;
    }
}

function signingKey() {
    var hex = process.env.KB_KEY;
    if (typeof hex !== 'string' || hex.length < 64 || !HEX.test(hex)) {
        return null;
    }
    return Buffer.from(hex, 'hex');
}

var KEY = signingKey();  // read when nginx loads its configuration (env KB_KEY)

/* The values of cookie `name` in a Cookie header, split like the gate (Werkzeug) splits it. */
function cookieValues(header, name) {
    var found = [];
    if (!header) {
        return found;
    }
    var pairs = header.split(';');
    for (var i = 0; i < pairs.length; i++) {
        var pair = pairs[i];
        var eq = pair.indexOf('=');
        if (eq >= 0 && pair.slice(0, eq).trim() === name) {
            found.push(pair.slice(eq + 1).trim());
        }
    }
    return found;
}

/* js_set $kb_edition: '' without a session cookie, 'gate' for any token nginx cannot accept,
   else the edition the gate would use for the token's sections. */
function edition(r) {
    var values = cookieValues(r.variables.http_cookie, COOKIE);
    if (values.length === 0 || (values.length === 1 && values[0] === '')) {
        return '';
    }
    if (values.length > 1) {
        return GATE;
    }
    var key = KEY;
    if (key === null) {
        return GATE;
    }
    var name = verifyToken(values[0], key, Date.now() / 1000);
    return name === null ? GATE : name;
}

/* Backslashes and control characters: such a path goes to the gate. */
function unusual(uri) {
    for (var i = 0; i < uri.length; i++) {
        var c = uri.charCodeAt(i);
        if (c < 0x20 || c === 0x7f || c === 0x5c) {
            return true;
        }
    }
    return false;
}

/* Requests the gate must answer whatever the path: other methods and Authorization headers. */
function forGate(r) {
    return (r.method !== 'GET' && r.method !== 'HEAD') || r.headersIn.Authorization !== undefined;
}

/* js_set $kb_target: the edition folder to serve this request from, or 'gate'. */
function target(r) {
    if (forGate(r)) {
        return GATE;
    }
    var uri = r.variables.uri;
    if (typeof uri !== 'string' || uri.charAt(0) !== '/' || unusual(uri)) {
        return GATE;
    }
    var section = sectionOf(uri);
    if (section === undefined) {
        return GATE;
    }
    var name = r.variables.kb_edition;
    if (name === GATE) {
        return GATE;
    }
    if (!maySee(sectionsOf(name), section)) {
        return GATE;  // the gate answers 303/401 (anonymous) or 403 (locked)
    }
    return name === '' ? PUBLIC : name;
}

/* js_set $kb_asset: fingerprinted theme assets are the same in every edition and public. */
function asset(r) {
    return forGate(r) ? GATE : PUBLIC;
}

export default {
    edition: edition,
    target: target,
    asset: asset,
    maySee: maySee,
    editionName: editionName,
    sectionOf: sectionOf,
    sectionsOf: sectionsOf,
    verifyToken: verifyToken,
    cookieValues: cookieValues
};
