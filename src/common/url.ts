/** A URL setting (PostgreSQL's, Redis's) with its password replaced by `***`, for a setting shown back in an error. */
export function redactUrlPassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    // Not a URL: whatever follows a ':' before an '@' could be a password.
    return value.replace(/:[^:@/]*@/, ':***@');
  }
}
