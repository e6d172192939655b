export { CSRF_HEADER } from './csrf.ts';
export { OidcLogin, type OidcLoginOptions } from './login.ts';
export { type OidcSettings, OidcSettingsSchema } from './settings.ts';
