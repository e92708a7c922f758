package gateway

// AyraMaxDecisions is ayraMaxDecisions, for the tests outside the package.
const AyraMaxDecisions = ayraMaxDecisions
