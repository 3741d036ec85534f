// Types for the generator, so TypeScript tests can import it.
export declare const PROFILE_SCHEMA_PATH: string
/** JSON Schema text (2-space JSON, trailing newline) for the TypeBox FirmwareProfile schema. */
export declare function renderProfileSchema(firmwareProfileSchema: object): string
