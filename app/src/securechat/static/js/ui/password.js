// Password strength: an entropy estimate with the reasons shown; 12 characters required.

export const MIN_PASSWORD_CHARS = 12;
const COMMON = ["password", "passwort", "123456", "qwerty", "azerty", "letmein", "welcome", "admin", "secret", "iloveyou", "monkey", "dragon", "abc123", "111111", "securechat", "changeme"];

function pool(password) {
  let size = 0;
  if (/[a-z]/.test(password)) size += 26;
  if (/[A-Z]/.test(password)) size += 26;
  if (/[0-9]/.test(password)) size += 10;
  if (/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(password)) size += 33;
  if (/\s/.test(password)) size += 1;
  if (/[^\x00-\x7f]/.test(password)) size += 100;
  return Math.max(size, 1);
}

function sequential(password) {
  let runs = 0;
  for (let i = 2; i < password.length; i += 1) {
    const a = password.charCodeAt(i - 2);
    const b = password.charCodeAt(i - 1);
    const c = password.charCodeAt(i);
    if ((b - a === 1 && c - b === 1) || (a - b === 1 && b - c === 1) || (a === b && b === c)) runs += 1;
  }
  return runs;
}

/** {bits, level (0..4), label, reasons[], ok} */
export function passwordStrength(password) {
  const chars = [...(password || "")];
  const length = chars.length;
  const reasons = [];
  if (length < MIN_PASSWORD_CHARS) reasons.push(`Use at least ${MIN_PASSWORD_CHARS} characters (now ${length}).`);
  let bits = length * Math.log2(pool(password || ""));
  const unique = new Set(chars).size;
  if (length >= 6 && (unique / length < 0.3 || unique < 4)) {
    bits *= Math.max(unique / length, 0.1) + 0.2;
    reasons.push("Many repeated characters.");
  }
  const runs = sequential(password || "");
  if (runs) {
    bits -= runs * 3;
    reasons.push("Avoid runs like “abc”, “123” or “aaa”.");
  }
  const lower = (password || "").toLowerCase();
  if (COMMON.some((word) => lower.includes(word))) {
    bits = Math.min(bits, 20);
    reasons.push("Contains a very common password.");
  }
  bits = Math.max(0, Math.round(bits));
  if (length >= MIN_PASSWORD_CHARS && bits < 60) reasons.push("Add more words: several unrelated words are strong and easy to remember.");
  const level = bits < 28 ? 0 : bits < 45 ? 1 : bits < 60 ? 2 : bits < 80 ? 3 : 4;
  const label = ["Very weak", "Weak", "Fair", "Strong", "Very strong"][level];
  return { bits, level, label, reasons, ok: length >= MIN_PASSWORD_CHARS };
}

export const USERNAME_RE = /^[a-z0-9][a-z0-9_.-]{2,31}$/;
export const USERNAME_RULES = "3 to 32 characters: lowercase letters, digits and _ . -, starting with a letter or digit.";

/** Why a username is not valid ("" when it is). */
export function usernameProblem(name) {
  if (!name) return "";
  if (name.length < 3) return "Too short: at least 3 characters.";
  if (name.length > 32) return "Too long: at most 32 characters.";
  if (!/^[a-z0-9]/.test(name)) return "Start with a letter or a digit.";
  if (!USERNAME_RE.test(name)) return "Only lowercase letters, digits and _ . - are allowed.";
  return "";
}
